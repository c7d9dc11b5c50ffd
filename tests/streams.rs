//! End-to-end tests of the stream commands against target/debug/ferrocache: replies are
//! compared byte for byte (RESP2 and RESP3) with what Redis 7.0.15 sends; blocking reads use
//! several connections of the `redis` crate; DUMP/RESTORE is checked against a real
//! redis-server when one is on PATH.

use std::time::{Duration, Instant};

mod common;
use common::{ferrocache, redis_server, Raw, ServerProc};

fn start() -> ServerProc {
    // STREAMS_TEST_AGAINST_REDIS=1 runs the same expectations against redis-server itself.
    if std::env::var_os("STREAMS_TEST_AGAINST_REDIS").is_some() {
        return redis_server(&[]).expect("redis-server");
    }
    ferrocache(&[])
}

fn bulk(s: &str) -> String {
    format!("${}\r\n{}\r\n", s.len(), s)
}

fn entry(id: &str, fv: &[&str]) -> String {
    let mut s = format!("*2\r\n{}*{}\r\n", bulk(id), fv.len());
    for x in fv {
        s.push_str(&bulk(x));
    }
    s
}

fn err(s: &str) -> String {
    format!("-{}\r\n", s)
}

#[test]
fn xadd_xrange_xlen_xdel_xtrim() {
    let srv = start();
    let mut c = Raw::connect(srv.port);
    assert_eq!(c.qraw("XADD s 1-1 a 1"), bulk("1-1"));
    assert_eq!(
        c.qraw("XADD s 1-1 a 1"),
        err("ERR The ID specified in XADD is equal or smaller than the target stream top item")
    );
    assert_eq!(c.qraw("XADD s 0-0 a 1"), err("ERR The ID specified in XADD must be greater than 0-0"));
    assert_eq!(c.qraw("XADD s 1-* b 2"), bulk("1-2"));
    assert_eq!(c.qraw("XADD s 2-* c 3 d 4"), bulk("2-0"));
    assert_eq!(
        c.qraw("XADD s 2 e 5"),
        err("ERR The ID specified in XADD is equal or smaller than the target stream top item")
    );
    assert_eq!(c.qraw("XADD s bad x y"), err("ERR Invalid stream ID specified as stream command argument"));
    assert_eq!(c.qraw("XADD s 3-1 a"), err("ERR wrong number of arguments for 'xadd' command"));
    assert_eq!(c.qraw("XADD s MAXLEN x 4-1 a 1"), err("ERR value is not an integer or out of range"));
    assert_eq!(c.qraw("XADD s MAXLEN -1 4-1 a 1"), err("ERR The MAXLEN argument must be >= 0."));
    assert_eq!(
        c.qraw("XADD s MAXLEN 5 MINID 1 4-1 a 1"),
        err("ERR syntax error, MAXLEN and MINID options at the same time are not compatible")
    );
    assert_eq!(
        c.qraw("XADD s LIMIT 10 4-1 a 1"),
        err("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy")
    );
    assert_eq!(
        c.qraw("XADD s MAXLEN 5 LIMIT 10 4-1 a 1"),
        err("ERR syntax error, LIMIT cannot be used without the special ~ option")
    );
    assert_eq!(c.qraw("XADD nokey NOMKSTREAM * a 1"), "$-1\r\n");
    assert_eq!(c.qraw("EXISTS nokey"), ":0\r\n");
    assert_eq!(c.qraw("XLEN s"), ":3\r\n");
    assert_eq!(c.qraw("XLEN nokey"), ":0\r\n");
    let all = format!(
        "*3\r\n{}{}{}",
        entry("1-1", &["a", "1"]),
        entry("1-2", &["b", "2"]),
        entry("2-0", &["c", "3", "d", "4"])
    );
    assert_eq!(c.qraw("XRANGE s - +"), all);
    assert_eq!(
        c.qraw("XRANGE s (1-1 +"),
        format!("*2\r\n{}{}", entry("1-2", &["b", "2"]), entry("2-0", &["c", "3", "d", "4"]))
    );
    assert_eq!(
        c.qraw("XRANGE s - + COUNT 2"),
        format!("*2\r\n{}{}", entry("1-1", &["a", "1"]), entry("1-2", &["b", "2"]))
    );
    assert_eq!(c.qraw("XRANGE s - + COUNT 0"), "*-1\r\n");
    assert_eq!(c.qraw("XRANGE s - + COUNT"), err("ERR syntax error"));
    assert_eq!(c.qraw("XRANGE s (- +"), err("ERR Invalid stream ID specified as stream command argument"));
    assert_eq!(c.qraw("XRANGE s - (0-0"), err("ERR invalid end ID for the interval"));
    assert_eq!(c.qraw("XRANGE s 1 1"), format!("*2\r\n{}{}", entry("1-1", &["a", "1"]), entry("1-2", &["b", "2"])));
    assert_eq!(c.qraw("XREVRANGE s + - COUNT 1"), format!("*1\r\n{}", entry("2-0", &["c", "3", "d", "4"])));
    assert_eq!(
        c.qraw("XREVRANGE s (2-0 -"),
        format!("*2\r\n{}{}", entry("1-2", &["b", "2"]), entry("1-1", &["a", "1"]))
    );
    assert_eq!(c.qraw("XRANGE nokey - +"), "*0\r\n");
    assert_eq!(c.qraw("XDEL s 1-2 9-9"), ":1\r\n");
    assert_eq!(c.qraw("XDEL s bad"), err("ERR Invalid stream ID specified as stream command argument"));
    assert_eq!(c.qraw("XLEN s"), ":2\r\n");
    assert_eq!(c.qraw("XTRIM s"), err("ERR wrong number of arguments for 'xtrim' command"));
    assert_eq!(c.qraw("XTRIM s FOO 1"), err("ERR syntax error"));
    assert_eq!(
        c.qraw("XTRIM s LIMIT 1 MAXLEN 1"),
        err("ERR syntax error, LIMIT cannot be used without the special ~ option")
    );
    assert_eq!(c.qraw("XTRIM s MAXLEN 1"), ":1\r\n");
    assert_eq!(c.qraw("XTRIM nokey MAXLEN 0"), ":0\r\n");
    assert_eq!(c.qraw("XTRIM s MINID 3"), ":1\r\n");
    // An emptied stream is kept.
    assert_eq!(c.qraw("XLEN s"), ":0\r\n");
    assert_eq!(c.qraw("TYPE s"), "+stream\r\n");
    assert_eq!(c.qraw("OBJECT ENCODING s"), bulk("stream"));
    assert_eq!(c.qraw("XADD s2 MAXLEN 0 1-1 a 1"), bulk("1-1"));
    assert_eq!(c.qraw("EXISTS s2"), ":1\r\n");
    // Wrong types.
    c.qraw("SET str x");
    let wt = err("WRONGTYPE Operation against a key holding the wrong kind of value");
    for q in [
        "XADD str * a 1",
        "XLEN str",
        "XRANGE str - +",
        "XREAD STREAMS str 0",
        "XINFO STREAM str",
        "XGROUP CREATE str g 0",
        "XDEL str 1",
    ] {
        assert_eq!(c.qraw(q), wt, "{}", q);
    }
    // ID exhaustion and ms-* overflow.
    c.qraw("XADD e 18446744073709551615-18446744073709551615 f v");
    assert_eq!(
        c.qraw("XADD e * f v"),
        err("ERR The stream has exhausted the last possible ID, unable to add more items")
    );
    c.qraw("XADD e2 5-18446744073709551615 f v");
    assert_eq!(c.qraw("XADD e2 5-* f v"), err("ERR Elements are too large to be stored"));
    assert_eq!(c.qraw("XADD e2 6-* f v"), bulk("6-0"));
    // Auto IDs are monotonic and time based.
    let a = c.qraw("XADD auto * f v");
    let b = c.qraw("XADD auto * f v");
    assert!(a < b || a.len() < b.len(), "{} {}", a, b);
}

#[test]
fn xsetid_and_xinfo_stream() {
    let srv = start();
    let mut c = Raw::connect(srv.port);
    c.qraw("XADD s 1-1 a 1");
    c.qraw("XADD s 2-1 b 2");
    c.qraw("XADD s 3-1 c 3");
    assert_eq!(c.qraw("XDEL s 2-1"), ":1\r\n");
    let info = c.qraw("XINFO STREAM s");
    let expect = format!(
        "*20\r\n{}:2\r\n{}:1\r\n{}:2\r\n{}{}{}{}{}:3\r\n{}{}{}:0\r\n{}{}{}{}",
        bulk("length"),
        bulk("radix-tree-keys"),
        bulk("radix-tree-nodes"),
        bulk("last-generated-id"),
        bulk("3-1"),
        bulk("max-deleted-entry-id"),
        bulk("2-1"),
        bulk("entries-added"),
        bulk("recorded-first-entry-id"),
        bulk("1-1"),
        bulk("groups"),
        bulk("first-entry"),
        entry("1-1", &["a", "1"]),
        bulk("last-entry"),
        entry("3-1", &["c", "3"])
    );
    assert_eq!(info, expect);
    assert_eq!(
        c.qraw("XINFO STREAM s FOO"),
        err("ERR unknown subcommand or wrong number of arguments for 'STREAM'. Try XINFO HELP.")
    );
    assert_eq!(c.qraw("XINFO STREAM nokey"), err("ERR no such key"));
    assert_eq!(c.qraw("XINFO FOO s"), err("ERR unknown subcommand 'FOO'. Try XINFO HELP."));
    let full = c.qraw("XINFO STREAM s FULL COUNT 1");
    assert!(full.starts_with("*18\r\n"), "{}", full);
    assert!(full.contains(&format!("{}*1\r\n{}", bulk("entries"), entry("1-1", &["a", "1"]))), "{}", full);
    assert!(c
        .qraw("XINFO HELP")
        .starts_with("*9\r\n+XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n"));
    assert_eq!(
        c.qraw("XSETID s 1-1"),
        err("ERR The ID specified in XSETID is smaller than the target stream top item")
    );
    assert_eq!(
        c.qraw("XSETID s 99-0 ENTRIESADDED 1"),
        err("ERR The entries_added specified in XSETID is smaller than the target stream length")
    );
    assert_eq!(
        c.qraw("XSETID s 99-0 MAXDELETEDID 100-0"),
        err("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id")
    );
    assert_eq!(c.qraw("XSETID s 99-0 ENTRIESADDED -1"), err("ERR entries_added must be positive"));
    assert_eq!(c.qraw("XSETID s 99-0 ENTRIESADDED 50 MAXDELETEDID 5-0"), "+OK\r\n");
    assert_eq!(c.qraw("XSETID nokey 1-1"), err("ERR no such key"));
    let info = c.qraw("XINFO STREAM s");
    assert!(info.contains(&format!("{}{}", bulk("last-generated-id"), bulk("99-0"))));
    assert!(info.contains(&format!("{}{}", bulk("max-deleted-entry-id"), bulk("5-0"))));
    assert!(info.contains(&format!("{}:50\r\n", bulk("entries-added"))));
    assert_eq!(
        c.qraw("XADD s 50-0 a 1"),
        err("ERR The ID specified in XADD is equal or smaller than the target stream top item")
    );
    assert_eq!(c.qraw("XADD s 99-* a 1"), bulk("99-1"));
}

/// `XADD ... MAXLEN ~ N` removes whole nodes of stream-node-max-entries (100) entries,
/// exactly as Redis: these numbers are redis-server 7.0.15's.
#[test]
fn approximate_trimming_matches_redis() {
    let srv = start();
    let mut c = Raw::connect(srv.port);
    for i in 1..=1000 {
        c.qraw(&format!("XADD t MAXLEN ~ 333 {}-0 item {}", i, i));
    }
    assert_eq!(c.qraw("XLEN t"), ":400\r\n");
    let info = c.qraw("XINFO STREAM t");
    assert!(
        info.contains(&format!("{}:4\r\n{}:12\r\n", bulk("radix-tree-keys"), bulk("radix-tree-nodes"))),
        "{}",
        info
    );
    assert!(info.contains(&format!("{}{}", bulk("recorded-first-entry-id"), bulk("601-0"))));
    assert_eq!(c.qraw("XTRIM t MAXLEN ~ 250"), ":100\r\n");
    assert_eq!(c.qraw("XTRIM t MAXLEN 250"), ":50\r\n");
    assert_eq!(c.qraw("XRANGE t - + COUNT 1"), format!("*1\r\n{}", entry("751-0", &["item", "751"])));
    assert_eq!(c.qraw("XTRIM t MINID ~ 900-0"), ":50\r\n");
    assert_eq!(c.qraw("XTRIM t MINID 900-0"), ":99\r\n");
    assert_eq!(c.qraw("XLEN t"), ":101\r\n");
    assert_eq!(c.qraw("XTRIM t MAXLEN ~ 0 LIMIT 5"), ":1\r\n");
    assert_eq!(c.qraw("XTRIM t MAXLEN ~ 0 LIMIT 100"), ":100\r\n");
    assert_eq!(c.qraw("XLEN t"), ":0\r\n");
    // Byte-limited nodes (stream-node-max-bytes 4096).
    for i in 1..=300 {
        c.qraw(&format!("XADD b {}-0 field {}", i, "v".repeat(100)));
    }
    assert_eq!(c.qraw("XTRIM b MAXLEN ~ 250"), ":36\r\n");
    assert_eq!(c.qraw("XLEN b"), ":264\r\n");
}

#[test]
fn consumer_groups() {
    let srv = start();
    let mut c = Raw::connect(srv.port);
    c.qraw("XADD s 1-1 a 1");
    c.qraw("XADD s 1-2 b 2");
    c.qraw("XADD s 2-0 c 3");
    assert_eq!(c.qraw("XGROUP CREATE s g1 0"), "+OK\r\n");
    assert_eq!(c.qraw("XGROUP CREATE s g1 0"), err("BUSYGROUP Consumer Group name already exists"));
    assert_eq!(
        c.qraw("XGROUP CREATE nokey g1 0"),
        err("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.")
    );
    assert_eq!(c.qraw("XGROUP CREATE nokey2 g1 $ MKSTREAM"), "+OK\r\n");
    assert_eq!(c.qraw("TYPE nokey2"), "+stream\r\n");
    assert_eq!(c.qraw("XGROUP CREATE s g2 $ ENTRIESREAD 3"), "+OK\r\n");
    assert_eq!(c.qraw("XGROUP CREATE s g3 $ ENTRIESREAD -5"), err("ERR value for ENTRIESREAD must be positive or -1"));
    assert_eq!(
        c.qraw("XGROUP CREATE s g3 $ FOO"),
        err("ERR unknown subcommand or wrong number of arguments for 'CREATE'. Try XGROUP HELP.")
    );
    assert_eq!(c.qraw("XGROUP SETID s nog 0"), err("NOGROUP No such consumer group 'nog' for key name 's'"));
    assert_eq!(c.qraw("XGROUP FOO s g1"), err("ERR unknown subcommand 'FOO'. Try XGROUP HELP."));
    assert_eq!(c.qraw("XGROUP CREATE s"), err("ERR wrong number of arguments for 'xgroup|create' command"));
    assert!(c.qraw("XGROUP HELP").starts_with("*17\r\n"));
    let groups = c.qraw("XINFO GROUPS s");
    let g = |name: &str, consumers: i64, pending: i64, last: &str, read: &str, lag: &str| {
        format!(
            "*12\r\n{}{}{}:{}\r\n{}:{}\r\n{}{}{}{}{}{}",
            bulk("name"),
            bulk(name),
            bulk("consumers"),
            consumers,
            bulk("pending"),
            pending,
            bulk("last-delivered-id"),
            bulk(last),
            bulk("entries-read"),
            read,
            bulk("lag"),
            lag
        )
    };
    assert_eq!(
        groups,
        format!("*2\r\n{}{}", g("g1", 0, 0, "0-0", "$-1\r\n", ":3\r\n"), g("g2", 0, 0, "2-0", ":3\r\n", ":0\r\n"))
    );
    // Reading new messages.
    assert_eq!(
        c.qraw("XREADGROUP GROUP g1 c1 COUNT 1 STREAMS s >"),
        format!("*1\r\n*2\r\n{}*1\r\n{}", bulk("s"), entry("1-1", &["a", "1"]))
    );
    assert_eq!(
        c.qraw("XREADGROUP GROUP g1 c2 STREAMS s >"),
        format!("*1\r\n*2\r\n{}*2\r\n{}{}", bulk("s"), entry("1-2", &["b", "2"]), entry("2-0", &["c", "3"]))
    );
    assert_eq!(c.qraw("XREADGROUP GROUP g1 c2 STREAMS s >"), "*-1\r\n");
    // History of c1 only.
    assert_eq!(
        c.qraw("XREADGROUP GROUP g1 c1 STREAMS s 0"),
        format!("*1\r\n*2\r\n{}*1\r\n{}", bulk("s"), entry("1-1", &["a", "1"]))
    );
    assert_eq!(
        c.qraw("XREADGROUP GROUP g1 c1 STREAMS s $"),
        err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.")
    );
    assert_eq!(
        c.qraw("XREADGROUP GROUP nog c1 STREAMS s >"),
        err("NOGROUP No such key 's' or consumer group 'nog' in XREADGROUP with GROUP option")
    );
    assert_eq!(c.qraw("XREADGROUP COUNT 1 NOACK STREAMS s >"), err("ERR Missing GROUP option for XREADGROUP"));
    assert_eq!(c.qraw("XREADGROUP STREAMS s >"), err("ERR wrong number of arguments for 'xreadgroup' command"));
    assert_eq!(
        c.qraw("XREAD GROUP g c STREAMS s 0"),
        err("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.")
    );
    assert_eq!(
        c.qraw("XREAD STREAMS s >"),
        err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.")
    );
    assert_eq!(
        c.qraw("XREAD STREAMS s t 0"),
        err("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.")
    );
    // XPENDING summary and extended forms.
    assert_eq!(
        c.qraw("XPENDING s g1"),
        format!(
            "*4\r\n:3\r\n{}{}*2\r\n*2\r\n{}{}*2\r\n{}{}",
            bulk("1-1"),
            bulk("2-0"),
            bulk("c1"),
            bulk("1"),
            bulk("c2"),
            bulk("2")
        )
    );
    let ext = c.qraw("XPENDING s g1 - + 10 c1");
    assert!(ext.starts_with(&format!("*1\r\n*4\r\n{}{}:", bulk("1-1"), bulk("c1"))), "{}", ext);
    assert!(ext.ends_with(":2\r\n"), "{}", ext);
    assert_eq!(c.qraw("XPENDING s g1 - + 10 nobody"), "*0\r\n");
    assert_eq!(c.qraw("XPENDING s g1 IDLE 100000 - + 10"), "*0\r\n");
    assert_eq!(c.qraw("XPENDING s g1 - +"), err("ERR syntax error"));
    assert_eq!(c.qraw("XPENDING s nog"), err("NOGROUP No such key 's' or consumer group 'nog'"));
    assert_eq!(c.qraw("XPENDING s g2"), "*4\r\n:0\r\n$-1\r\n$-1\r\n*-1\r\n");
    // XACK.
    assert_eq!(c.qraw("XACK s g1 1-1 9-9"), ":1\r\n");
    assert_eq!(c.qraw("XACK s g1 bad"), err("ERR Invalid stream ID specified as stream command argument"));
    assert_eq!(c.qraw("XACK s nog 1-1"), ":0\r\n");
    // Consumers.
    assert_eq!(c.qraw("XGROUP CREATECONSUMER s g1 c3"), ":1\r\n");
    assert_eq!(c.qraw("XGROUP CREATECONSUMER s g1 c3"), ":0\r\n");
    assert_eq!(c.qraw("XGROUP DELCONSUMER s g1 c3"), ":0\r\n");
    assert_eq!(c.qraw("XINFO CONSUMERS s nog"), err("NOGROUP No such consumer group 'nog' for key name 's'"));
    let cons = c.qraw("XINFO CONSUMERS s g1");
    assert!(
        cons.starts_with(&format!(
            "*2\r\n*6\r\n{}{}{}:0\r\n{}:",
            bulk("name"),
            bulk("c1"),
            bulk("pending"),
            bulk("idle")
        )),
        "{}",
        cons
    );
    // XCLAIM.
    assert_eq!(c.qraw("XCLAIM s g1 c9 0 1-2 JUSTID"), format!("*1\r\n{}", bulk("1-2")));
    assert_eq!(c.qraw("XCLAIM s g1 c9 0 1-2 FOO"), err("ERR Unrecognized XCLAIM option 'FOO'"));
    assert_eq!(c.qraw("XCLAIM s g1 c9 x 1-2"), err("ERR Invalid min-idle-time argument for XCLAIM"));
    assert_eq!(c.qraw("XCLAIM s nog c9 0 1-2"), err("NOGROUP No such key 's' or consumer group 'nog'"));
    assert_eq!(c.qraw("XCLAIM s g1 c9 0 1-1 FORCE"), format!("*1\r\n{}", entry("1-1", &["a", "1"])));
    assert_eq!(c.qraw("XCLAIM s g1 c9 3600000 2-0"), "*0\r\n");
    assert_eq!(c.qraw("XCLAIM s g1 c9 0 2-0 IDLE 5000 RETRYCOUNT 7 JUSTID"), format!("*1\r\n{}", bulk("2-0")));
    let p = c.qraw("XPENDING s g1 - + 10");
    assert!(p.contains(&format!("{}{}:", bulk("2-0"), bulk("c9"))) && p.ends_with(":7\r\n"), "{}", p);
    assert_eq!(c.qraw("XPENDING s g1 IDLE 4000 - + 10").matches("2-0").count(), 1);
    // 1-1 was acked and re-created by FORCE: delivery count 2 like Redis.
    assert!(p.starts_with(&format!("*3\r\n*4\r\n{}{}", bulk("1-1"), bulk("c9"))) && p.contains(":2\r\n*4"), "{}", p);
    // XAUTOCLAIM (7.0 reply: cursor, claimed, deleted IDs).
    assert_eq!(
        c.qraw("XAUTOCLAIM s g1 c5 0 0 COUNT 1"),
        format!("*3\r\n{}*1\r\n{}*0\r\n", bulk("1-2"), entry("1-1", &["a", "1"]))
    );
    assert_eq!(c.qraw("XAUTOCLAIM s g1 c5 0 0 COUNT 0"), err("ERR COUNT must be > 0"));
    assert_eq!(c.qraw("XAUTOCLAIM s g1 c5 x 0"), err("ERR Invalid min-idle-time argument for XAUTOCLAIM"));
    assert_eq!(c.qraw("XAUTOCLAIM s nog c5 0 0"), err("NOGROUP No such key 's' or consumer group 'nog'"));
    c.qraw("XDEL s 1-2");
    assert_eq!(
        c.qraw("XAUTOCLAIM s g1 c5 0 0 JUSTID"),
        format!("*3\r\n{}*2\r\n{}{}*1\r\n{}", bulk("0-0"), bulk("1-1"), bulk("2-0"), bulk("1-2"))
    );
    assert_eq!(c.qraw("XGROUP DELCONSUMER s g1 c5"), ":2\r\n");
    assert_eq!(c.qraw("XPENDING s g1"), "*4\r\n:0\r\n$-1\r\n$-1\r\n*-1\r\n");
    // SETID and lag.
    assert_eq!(c.qraw("XGROUP SETID s g1 $ ENTRIESREAD 3"), "+OK\r\n");
    let groups = c.qraw("XINFO GROUPS s");
    assert!(
        groups.contains(&format!(
            "{}{}{}:3\r\n{}:0\r\n",
            bulk("last-delivered-id"),
            bulk("2-0"),
            bulk("entries-read"),
            bulk("lag")
        )),
        "{}",
        groups
    );
    assert_eq!(c.qraw("XGROUP DESTROY s g2"), ":1\r\n");
    assert_eq!(c.qraw("XGROUP DESTROY s g2"), ":0\r\n");
    // NOACK: nothing pending.
    c.qraw("XADD s 3-0 z 1");
    assert_eq!(
        c.qraw("XREADGROUP GROUP g1 c1 NOACK STREAMS s >"),
        format!("*1\r\n*2\r\n{}*1\r\n{}", bulk("s"), entry("3-0", &["z", "1"]))
    );
    assert_eq!(c.qraw("XPENDING s g1"), "*4\r\n:0\r\n$-1\r\n$-1\r\n*-1\r\n");
    // XINFO STREAM FULL with a group.
    c.qraw("XADD s 4-0 y 1");
    c.qraw("XREADGROUP GROUP g1 c1 STREAMS s >");
    let full = c.qraw("XINFO STREAM s FULL");
    assert!(
        full.contains(&format!(
            "{}:1\r\n{}*1\r\n*4\r\n{}{}:",
            bulk("pel-count"),
            bulk("pending"),
            bulk("4-0"),
            bulk("c1")
        )),
        "{}",
        full
    );
    assert!(full.contains(&format!("{}{}{}:", bulk("name"), bulk("c1"), bulk("seen-time"))), "{}", full);
}

#[test]
fn resp3_forms() {
    let srv = start();
    let mut c = Raw::connect(srv.port);
    assert!(c.qraw("HELLO 3").starts_with('%'));
    c.qraw("XADD s 1-1 a 1");
    c.qraw("XADD t 1-1 b 2");
    assert_eq!(
        c.qraw("XREAD STREAMS s t 0 0"),
        format!(
            "%2\r\n{}*1\r\n{}{}*1\r\n{}",
            bulk("s"),
            entry("1-1", &["a", "1"]),
            bulk("t"),
            entry("1-1", &["b", "2"])
        )
    );
    assert_eq!(c.qraw("XREAD STREAMS s 1-1"), "_\r\n");
    assert_eq!(c.qraw("XRANGE s - + COUNT 0"), "_\r\n");
    assert_eq!(c.qraw("XADD nokey NOMKSTREAM * a 1"), "_\r\n");
    c.qraw("XGROUP CREATE s g $");
    assert_eq!(c.qraw("XPENDING s g"), "*4\r\n:0\r\n_\r\n_\r\n_\r\n");
    let info = c.qraw("XINFO STREAM s");
    assert!(info.starts_with(&format!("%10\r\n{}:1\r\n", bulk("length"))), "{}", info);
    let groups = c.qraw("XINFO GROUPS s");
    assert!(groups.starts_with("*1\r\n%6\r\n"), "{}", groups);
    c.qraw("XGROUP SETID s g 0");
    let groups = c.qraw("XINFO GROUPS s");
    assert!(groups.contains(&format!("{}_\r\n{}:1\r\n", bulk("entries-read"), bulk("lag"))), "{}", groups);
    assert_eq!(
        c.qraw("XREADGROUP GROUP g c STREAMS s >"),
        format!("%1\r\n{}*1\r\n{}", bulk("s"), entry("1-1", &["a", "1"]))
    );
    assert_eq!(c.qraw("XREADGROUP GROUP g c BLOCK 10 STREAMS s >"), "_\r\n");
}

#[test]
fn blocking_reads_from_several_connections() {
    let srv = start();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let url = format!("redis://127.0.0.1:{}/", srv.port);
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut w = client.get_multiplexed_async_connection().await.unwrap();
        let _: String = redis::cmd("XADD").arg("bs").arg("1-0").arg("a").arg("old").query_async(&mut w).await.unwrap();
        // Two readers blocked with `$`: both must get only the new entry, resolved at block time.
        let mut readers = Vec::new();
        for count in [None, Some(1)] {
            let mut c = client.get_multiplexed_async_connection().await.unwrap();
            readers.push(tokio::spawn(async move {
                let mut cmd = redis::cmd("XREAD");
                if let Some(n) = count {
                    cmd.arg("COUNT").arg(n);
                }
                cmd.arg("BLOCK").arg(0).arg("STREAMS").arg("bs").arg("$");
                let v: redis::Value = cmd.query_async(&mut c).await.unwrap();
                v
            }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        // A write to another key does not wake them with wrong data.
        let _: String = redis::cmd("XADD").arg("other").arg("*").arg("x").arg("1").query_async(&mut w).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _: String = redis::cmd("XADD").arg("bs").arg("2-0").arg("a").arg("new").query_async(&mut w).await.unwrap();
        for r in readers {
            let v = tokio::time::timeout(Duration::from_secs(5), r).await.unwrap().unwrap();
            let s = format!("{:?}", v);
            assert!(s.contains("2-0") && s.contains("new") && !s.contains("old"), "{}", s);
        }
        // Timeout: null reply after about the given time.
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let t = Instant::now();
        let v: redis::Value = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(200)
            .arg("STREAMS")
            .arg("bs")
            .arg("$")
            .query_async(&mut c)
            .await
            .unwrap();
        assert_eq!(v, redis::Value::Nil);
        assert!(t.elapsed() >= Duration::from_millis(180));
        // Errors.
        let e = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(-1)
            .arg("STREAMS")
            .arg("bs")
            .arg("$")
            .query_async::<redis::Value>(&mut c)
            .await;
        assert!(format!("{:?}", e).contains("timeout is negative"));
        let e = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg("x")
            .arg("STREAMS")
            .arg("bs")
            .arg("$")
            .query_async::<redis::Value>(&mut c)
            .await;
        assert!(format!("{:?}", e).contains("timeout is not an integer or out of range"));
        // Consumer group: two consumers blocked on `>`, two entries: each gets one.
        let _: String =
            redis::cmd("XGROUP").arg("CREATE").arg("bs").arg("g").arg("$").query_async(&mut w).await.unwrap();
        let mut readers = Vec::new();
        for name in ["c1", "c2"] {
            let mut c = client.get_multiplexed_async_connection().await.unwrap();
            readers.push(tokio::spawn(async move {
                let v: redis::Value = redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg("g")
                    .arg(name)
                    .arg("COUNT")
                    .arg(1)
                    .arg("BLOCK")
                    .arg(0)
                    .arg("STREAMS")
                    .arg("bs")
                    .arg(">")
                    .query_async(&mut c)
                    .await
                    .unwrap();
                format!("{:?}", v)
            }));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _: String = redis::cmd("XADD").arg("bs").arg("3-0").arg("a").arg("x3").query_async(&mut w).await.unwrap();
        let _: String = redis::cmd("XADD").arg("bs").arg("4-0").arg("a").arg("x4").query_async(&mut w).await.unwrap();
        let mut got = Vec::new();
        for r in readers {
            got.push(tokio::time::timeout(Duration::from_secs(5), r).await.unwrap().unwrap());
        }
        let both = got.join(" ");
        assert!(both.contains("3-0") && both.contains("4-0"), "{}", both);
        assert!(got.iter().all(|g| g.matches("-0").count() == 1), "{:?}", got);
        let pending: redis::Value = redis::cmd("XPENDING").arg("bs").arg("g").query_async(&mut w).await.unwrap();
        assert!(format!("{:?}", pending).to_lowercase().starts_with("array([int(2)"), "{:?}", pending);
        // XGROUP DESTROY wakes a blocked XREADGROUP with NOGROUP.
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let h = tokio::spawn(async move {
            redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg("g")
                .arg("c1")
                .arg("BLOCK")
                .arg(0)
                .arg("STREAMS")
                .arg("bs")
                .arg(">")
                .query_async::<redis::Value>(&mut c)
                .await
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _: i64 = redis::cmd("XGROUP").arg("DESTROY").arg("bs").arg("g").query_async(&mut w).await.unwrap();
        let r = tokio::time::timeout(Duration::from_secs(5), h).await.unwrap().unwrap();
        assert!(
            format!("{:?}", r).contains("the consumer group this client was blocked on no longer exists"),
            "{:?}",
            r
        );
    });
    // BLOCK inside MULTI does not block.
    let mut c = Raw::connect(srv.port);
    assert_eq!(c.qraw("MULTI"), "+OK\r\n");
    assert_eq!(c.qraw("XREAD BLOCK 0 STREAMS bs $"), "+QUEUED\r\n");
    assert_eq!(c.qraw("EXEC"), "*1\r\n*-1\r\n");
}

#[test]
fn dump_restore_round_trip() {
    let srv = start();
    let mut c = Raw::connect(srv.port);
    c.qraw("XADD s 1-1 a 1");
    c.qraw("XADD s 2-1 b 2 c 3");
    c.qraw("XADD s 3-1 a 4");
    c.qraw("XGROUP CREATE s g 0");
    c.qraw("XREADGROUP GROUP g alice COUNT 2 STREAMS s >");
    c.qraw("XDEL s 3-1");
    c.send_cmd::<&[u8]>(&[b"DUMP", b"s"]);
    let dump = c.read_raw();
    let hdr_end = dump.iter().position(|&x| x == b'\n').unwrap() + 1;
    let payload = &dump[hdr_end..dump.len() - 2];
    c.send_cmd::<&[u8]>(&[b"RESTORE", b"s2", b"0", payload]);
    assert_eq!(c.read_raw(), b"+OK\r\n");
    let a = c.qraw("XINFO STREAM s FULL");
    let b = c.qraw("XINFO STREAM s2 FULL");
    assert_eq!(a, b);
    let Some(redis) = redis_server(&[]) else {
        println!("redis-server not on PATH: skipping the comparison with a real server");
        return;
    };
    let mut r = Raw::connect(redis.port);
    // Streams built by XADD dump byte-identically.
    let case1: Vec<String> =
        ["XADD k 1-1 a 1", "XADD k 1-2 a 2", "XADD k 5-0 b 2 c 3"].iter().map(|s| s.to_string()).collect();
    let case2: Vec<String> =
        (1..=250).map(|i| format!("XADD k MAXLEN ~ 120 {}-0 field{} {}", i, i % 3, "x".repeat(i % 40 + 1))).collect();
    for (i, cmds) in [case1, case2].into_iter().enumerate() {
        c.qraw("DEL k");
        r.qraw("DEL k");
        for q in &cmds {
            assert_eq!(c.qraw(q), r.qraw(q), "{}", q);
        }
        c.qraw("XGROUP CREATE k grp 0");
        r.qraw("XGROUP CREATE k grp 0");
        assert_eq!(c.qraw("DUMP k"), r.qraw("DUMP k"), "case {}", i);
        assert_eq!(c.qraw("XINFO STREAM k FULL"), r.qraw("XINFO STREAM k FULL"), "case {}", i);
    }
    // Redis's DUMP (with consumers and PEL) restores here and back.
    r.qraw("DEL q");
    for q in ["XADD q 1-1 a 1", "XADD q 2-1 b 2", "XADD q 3-1 c 3", "XGROUP CREATE q g 0"] {
        r.qraw(q);
    }
    r.qraw("XREADGROUP GROUP g alice COUNT 2 STREAMS q >");
    r.qraw("XCLAIM q g bob 0 2-1 TIME 1000 RETRYCOUNT 5");
    r.qraw("XDEL q 3-1");
    r.send_cmd::<&[u8]>(&[b"DUMP", b"q"]);
    let dump = r.read_raw();
    let hdr_end = dump.iter().position(|&x| x == b'\n').unwrap() + 1;
    let payload = dump[hdr_end..dump.len() - 2].to_vec();
    c.send_cmd::<&[u8]>(&[b"RESTORE", b"q", b"0", &payload, b"REPLACE"]);
    assert_eq!(c.read_raw(), b"+OK\r\n");
    assert_eq!(c.qraw("XINFO STREAM q FULL"), r.qraw("XINFO STREAM q FULL"));
    c.send_cmd::<&[u8]>(&[b"DUMP", b"q"]);
    let ours = c.read_raw();
    let hdr_end = ours.iter().position(|&x| x == b'\n').unwrap() + 1;
    r.send_cmd::<&[u8]>(&[b"RESTORE", b"q2", b"0", &ours[hdr_end..ours.len() - 2]]);
    assert_eq!(r.read_raw(), b"+OK\r\n");
    assert_eq!(r.qraw("XINFO STREAM q2 FULL"), r.qraw("XINFO STREAM q FULL"));
}
