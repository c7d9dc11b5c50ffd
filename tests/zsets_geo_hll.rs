//! End-to-end tests for sorted sets, geo, HyperLogLog and SORT against target/debug/ferrocache,
//! with a differential part against a real redis-server when one is on PATH.

use std::time::{Duration, Instant};

mod common;
use common::{ferrocache, redis_server, Raw};

/// Assert a command line's exact raw reply.
macro_rules! check {
    ($r:expr, $cmd:expr, $want:expr) => {
        assert_eq!($r.qraw($cmd), $want, "command: {}", $cmd)
    };
}

fn err(s: &str) -> String {
    format!("-{s}\r\n")
}
fn int(n: i64) -> String {
    format!(":{n}\r\n")
}
fn bulk(s: &str) -> String {
    format!("${}\r\n{}\r\n", s.len(), s)
}
fn arr(items: &[String]) -> String {
    format!("*{}\r\n{}", items.len(), items.concat())
}
fn bulks(items: &[&str]) -> String {
    arr(&items.iter().map(|s| bulk(s)).collect::<Vec<_>>())
}
const NIL: &str = "$-1\r\n";
const NIL3: &str = "_\r\n";
const EMPTY: &str = "*0\r\n";

#[test]
fn zadd_options_and_errors() {
    let p = ferrocache(&[]);
    let mut r = Raw::connect(p.port);
    check!(r, "zadd z 1 a 2 b 3 c", int(3));
    check!(r, "zadd z nx xx 1 a", err("ERR XX and NX options at the same time are not compatible"));
    check!(r, "zadd z gt lt 1 a", err("ERR GT, LT, and/or NX options at the same time are not compatible"));
    check!(r, "zadd z nx gt 1 a", err("ERR GT, LT, and/or NX options at the same time are not compatible"));
    check!(r, "zadd z incr 1 a 2 b", err("ERR INCR option supports a single increment-element pair"));
    check!(r, "zadd z 1 a 2", err("ERR syntax error"));
    check!(r, "zadd z nx", err("ERR wrong number of arguments for 'zadd' command"));
    check!(r, "zadd z abc a", err("ERR value is not a valid float"));
    check!(r, "zadd z nan a", err("ERR value is not a valid float"));
    check!(r, "zadd z incr 5 a", bulk("6"));
    check!(r, "zadd z xx incr 5 zz", NIL);
    check!(r, "zadd z nx incr 5 a", NIL);
    check!(r, "zadd z ch gt 10 a 0 b 7 d", int(2));
    check!(r, "zadd z lt ch 1 a", int(1));
    check!(r, "zadd z xx 100 newmember", int(0));
    check!(r, "zadd z inf x", int(1));
    check!(r, "zadd z incr -inf x", err("ERR resulting score is not a number (NaN)"));
    check!(r, "zincrby z 2.5 b", bulk("4.5"));
    check!(r, "zincrby z x b", err("ERR value is not a valid float"));
    check!(r, "zincrby z 1", err("ERR wrong number of arguments for 'zincrby' command"));
    check!(r, "zadd nokey xx 1 a", int(0));
    check!(r, "exists nokey", int(0));
    check!(r, "zrange z 0 -1 withscores", bulks(&["a", "1", "c", "3", "b", "4.5", "d", "7", "x", "inf"]));
    check!(r, "set s v", "+OK\r\n");
    check!(r, "zadd s 1 a", err("WRONGTYPE Operation against a key holding the wrong kind of value"));
    check!(r, "zscore z b", bulk("4.5"));
    check!(r, "zadd f 0.1 a", int(1));
    check!(r, "zscore f a", bulk("0.10000000000000001"));
    r.qraw("hello 3");
    check!(r, "zscore f a", ",0.10000000000000001\r\n");
    check!(r, "zincrby f 1 a", ",1.1000000000000001\r\n");
    check!(r, "zscore f nope", NIL3);
    check!(r, "zadd f xx incr 1 nope", NIL3);
}

#[test]
fn zset_reads_and_ranges() {
    let p = ferrocache(&[]);
    let mut r = Raw::connect(p.port);
    r.qraw("zadd z 1 a 2 b 3 c 4 d");
    check!(r, "zcard z", int(4));
    check!(r, "zcard nokey", int(0));
    check!(r, "zcount z (1 3", int(2));
    check!(r, "zcount z -inf +inf", int(4));
    check!(r, "zcount z a b", err("ERR min or max is not a float"));
    check!(r, "zscore nokey a", NIL);
    check!(r, "zmscore z a nope d", arr(&[bulk("1"), NIL.into(), bulk("4")]));
    check!(r, "zmscore nokey a", arr(&[NIL.into()]));
    check!(r, "zrank z c", int(2));
    check!(r, "zrevrank z c", int(1));
    check!(r, "zrank z nope", NIL);
    check!(r, "zrange z 1 2", bulks(&["b", "c"]));
    check!(r, "zrange z -2 -1 rev", bulks(&["b", "a"]));
    check!(r, "zrange z 5 10", EMPTY);
    check!(r, "zrange z (1 +inf byscore limit 1 1 withscores", bulks(&["c", "3"]));
    check!(r, "zrange z +inf (1 byscore rev", bulks(&["d", "c", "b"]));
    check!(
        r,
        "zrange z 0 -1 limit 0 1",
        err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
    );
    check!(
        r,
        "zrange z - + bylex withscores",
        err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    );
    check!(r, "zrange z x 1", err("ERR value is not an integer or out of range"));
    check!(r, "zrange z 0 1 foo", err("ERR syntax error"));
    check!(r, "zrangebyscore z 2 3 withscores", bulks(&["b", "2", "c", "3"]));
    check!(r, "zrangebyscore z 2 3 rev", err("ERR syntax error"));
    check!(r, "zrevrangebyscore z 3 2", bulks(&["c", "b"]));
    check!(r, "zrevrangebyscore z +inf -inf limit 1 2", bulks(&["c", "b"]));
    check!(r, "zrangebyscore z -inf +inf limit -1 2", EMPTY);
    check!(r, "zrevrange z 0 1 withscores", bulks(&["d", "4", "c", "3"]));
    r.qraw("zadd l 0 a 0 b 0 c 0 d 0 e");
    check!(r, "zrangebylex l [b (d", bulks(&["b", "c"]));
    check!(r, "zrangebylex l - + limit 1 2", bulks(&["b", "c"]));
    check!(r, "zrangebylex l b d", err("ERR min or max not valid string range item"));
    check!(r, "zrevrangebylex l (d [a", bulks(&["c", "b", "a"]));
    check!(r, "zlexcount l [b +", int(4));
    check!(r, "zlexcount l x y", err("ERR min or max not valid string range item"));
    // RESP3: WITHSCORES as [member, score] pairs, scores as doubles.
    r.qraw("hello 3");
    check!(r, "zrange z 0 1 withscores", "*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2\r\n");
    check!(r, "zrangebyscore z 4 4 withscores", "*1\r\n*2\r\n$1\r\nd\r\n,4\r\n");
    check!(r, "zrange z 0 0", "*1\r\n$1\r\na\r\n");
    check!(r, "zmscore z a nope", "*2\r\n,1\r\n_\r\n");
    check!(r, "zrank z nope", NIL3);
}

#[test]
fn zset_writes_store_and_encodings() {
    let p = ferrocache(&[]);
    let mut r = Raw::connect(p.port);
    r.qraw("zadd z 1 a 2 b 3 c 4 d");
    check!(r, "zrem z a nope", int(1));
    check!(r, "zrem nokey a", int(0));
    check!(r, "zremrangebyrank z 0 0", int(1));
    check!(r, "zremrangebyrank z x 0", err("ERR value is not an integer or out of range"));
    check!(r, "zremrangebyscore z (3 +inf", int(1));
    check!(r, "zremrangebyscore z a b", err("ERR min or max is not a float"));
    check!(r, "zrange z 0 -1", bulks(&["c"]));
    check!(r, "zremrangebylex z - +", int(1));
    check!(r, "exists z", int(0));
    r.qraw("zadd src 1 a 2 b 3 c");
    check!(r, "zrangestore dst src 0 1", int(2));
    check!(r, "zrange dst 0 -1 withscores", bulks(&["a", "1", "b", "2"]));
    check!(r, "zrangestore dst src 0 -1 withscores", err("ERR syntax error"));
    check!(r, "zrangestore dst src (1 +inf byscore rev", int(0));
    check!(r, "zrangestore dst src +inf (1 byscore rev limit 0 1", int(1));
    check!(r, "zrange dst 0 -1", bulks(&["c"]));
    check!(r, "zrangestore dst nokey 0 -1", int(0));
    check!(r, "exists dst", int(0));
    check!(r, "object encoding src", bulk("listpack"));
    let long = "x".repeat(65);
    check!(r, &format!("zadd big 1 {long}"), int(1));
    check!(r, "object encoding big", bulk("skiplist"));
    let mut args: Vec<String> = vec!["zadd".into(), "many".into()];
    for i in 0..129 {
        args.push(i.to_string());
        args.push(format!("m{i}"));
    }
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    assert_eq!(r.cmd_raw(&a), int(129));
    check!(r, "object encoding many", bulk("skiplist"));
    check!(r, "zrangestore small many 0 9", int(10));
    check!(r, "object encoding small", bulk("listpack"));
    check!(r, "zunionstore u 1 many", int(129));
    check!(r, "object encoding u", bulk("skiplist"));
    check!(r, "zinterstore u 2 many small", int(10));
    check!(r, "object encoding u", bulk("listpack"));
    check!(r, "config set zset-max-listpack-entries 0", "+OK\r\n");
    check!(r, "zadd zero 1 a", int(1));
    check!(r, "object encoding zero", bulk("skiplist"));
}

#[test]
fn zset_set_operations() {
    let p = ferrocache(&[]);
    let mut r = Raw::connect(p.port);
    r.qraw("zadd a 1 x 2 y 3 z");
    r.qraw("zadd b 10 y 20 z 30 w");
    check!(r, "zunion 2 a b withscores", bulks(&["x", "1", "y", "12", "z", "23", "w", "30"]));
    check!(r, "zunion 2 a b weights 2 3 withscores", bulks(&["x", "2", "y", "34", "z", "66", "w", "90"]));
    check!(r, "zunion 2 a b weights 2", err("ERR syntax error"));
    check!(r, "zunion 2 a b aggregate min withscores", bulks(&["x", "1", "y", "2", "z", "3", "w", "30"]));
    check!(r, "zunion 2 a b aggregate max", bulks(&["x", "y", "z", "w"]));
    check!(r, "zunion 2 a b aggregate foo", err("ERR syntax error"));
    check!(r, "zunion 2 a b weights 1 x", err("ERR weight value is not a float"));
    check!(r, "zunion 0 a", err("ERR at least 1 input key is needed for 'zunion' command"));
    check!(r, "zunion 3 a b", err("ERR syntax error"));
    check!(r, "zunion x a", err("ERR value is not an integer or out of range"));
    check!(r, "zinter 2 a b withscores", bulks(&["y", "12", "z", "23"]));
    check!(r, "zinter 2 a nokey", EMPTY);
    check!(r, "zinter 2 a b aggregate max weights 1 -1 withscores", bulks(&["y", "2", "z", "3"]));
    check!(r, "zintercard 2 a b", int(2));
    check!(r, "zintercard 2 a b limit 1", int(1));
    check!(r, "zintercard 2 a b limit -1", err("ERR LIMIT can't be negative"));
    check!(r, "zintercard 0 a", err("ERR at least 1 input key is needed for 'zintercard' command"));
    check!(r, "zintercard 2 a b withscores", err("ERR syntax error"));
    check!(r, "zdiff 2 a b withscores", bulks(&["x", "1"]));
    check!(r, "zdiff 2 a b weights 1 1", err("ERR syntax error"));
    check!(r, "zunionstore d 2 a b", int(4));
    check!(r, "zinterstore d 2 a b weights 1 2 aggregate sum", int(2));
    check!(r, "zrange d 0 -1 withscores", bulks(&["y", "22", "z", "43"]));
    check!(r, "zinterstore d 2 a b withscores", err("ERR syntax error"));
    check!(r, "zdiffstore d 2 a a", int(0));
    check!(r, "exists d", int(0));
    check!(r, "zunionstore d 0 a", err("ERR at least 1 input key is needed for 'zunionstore' command"));
    r.qraw("set str v");
    check!(r, "zunion 2 a str", err("WRONGTYPE Operation against a key holding the wrong kind of value"));
    // inf * 0 and inf + -inf are 0 as in Redis.
    r.qraw("zadd i 1 a");
    r.qraw("zadd j -inf a");
    check!(r, "zunion 2 i j weights inf 1 withscores", bulks(&["a", "0"]));
    check!(r, "zunion 2 i j weights 0 1 withscores", bulks(&["a", "-inf"]));
    r.qraw("hello 3");
    check!(
        r,
        "zunion 2 a b withscores",
        "*4\r\n*2\r\n$1\r\nx\r\n,1\r\n*2\r\n$1\r\ny\r\n,12\r\n*2\r\n$1\r\nz\r\n,23\r\n*2\r\n$1\r\nw\r\n,30\r\n"
    );
}

#[test]
fn zset_pops_randmember_scan() {
    let p = ferrocache(&[]);
    let mut r = Raw::connect(p.port);
    r.qraw("zadd a 1 x 2 y 3 z");
    check!(r, "zpopmin a", bulks(&["x", "1"]));
    check!(r, "zpopmax a 5", bulks(&["z", "3", "y", "2"]));
    check!(r, "exists a", int(0));
    check!(r, "zpopmin a", EMPTY);
    r.qraw("zadd a 1 x 2 y 3 z");
    check!(r, "zpopmin a 0", EMPTY);
    check!(r, "zpopmin a -1", err("ERR value is out of range, must be positive"));
    check!(r, "zpopmin a x", err("ERR value is out of range, must be positive"));
    check!(r, "zpopmin a 1 2", err("ERR syntax error"));
    check!(r, "zmpop 2 nokey a min", arr(&[bulk("a"), arr(&[bulks(&["x", "1"])])]));
    check!(r, "zmpop 2 nokey a max count 10", arr(&[bulk("a"), arr(&[bulks(&["z", "3"]), bulks(&["y", "2"])])]));
    check!(r, "zmpop 1 nokey min", "*-1\r\n");
    check!(r, "zmpop 0 a min", err("ERR numkeys should be greater than 0"));
    check!(r, "zmpop 1 a foo", err("ERR syntax error"));
    check!(r, "zmpop 1 a min count 0", err("ERR count should be greater than 0"));
    check!(r, "zmpop 1 a min count 1 count 2", err("ERR syntax error"));
    check!(r, "zmpop 5 a min", err("ERR syntax error"));
    r.qraw("set str v");
    check!(r, "zmpop 1 str min", err("WRONGTYPE Operation against a key holding the wrong kind of value"));
    check!(r, "bzpopmin a x", err("ERR timeout is not a float or out of range"));
    check!(r, "bzpopmin a -1", err("ERR timeout is negative"));
    check!(r, "bzpopmin str 0", err("WRONGTYPE Operation against a key holding the wrong kind of value"));
    r.qraw("zadd a 1 x 2 y");
    check!(r, "bzpopmin nokey a 0", bulks(&["a", "x", "1"]));
    check!(r, "bzpopmax a 0", bulks(&["a", "y", "2"]));
    check!(r, "bzpopmin a 0.05", "*-1\r\n");
    r.qraw("zadd a 1 x 2 y");
    check!(r, "bzmpop 0 2 nokey a max count 5", arr(&[bulk("a"), arr(&[bulks(&["y", "2"]), bulks(&["x", "1"])])]));
    check!(r, "bzmpop 0 2 nokey a foo", err("ERR syntax error"));
    // Never block inside MULTI.
    check!(r, "multi", "+OK\r\n");
    check!(r, "bzpopmin a 0", "+QUEUED\r\n");
    check!(r, "bzmpop 0 1 a min", "+QUEUED\r\n");
    check!(r, "exec", "*2\r\n*-1\r\n*-1\r\n");
    // ZRANDMEMBER
    check!(r, "zrandmember nokey", NIL);
    check!(r, "zrandmember nokey 5", EMPTY);
    r.qraw("zadd j 1 a 2 b");
    check!(r, "zrandmember j 0", EMPTY);
    check!(r, "zrandmember j 5 withscores", bulks(&["b", "2", "a", "1"]));
    check!(
        r,
        "zrandmember j -9223372036854775808",
        err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
    );
    check!(r, "zrandmember j 1 foo", err("ERR syntax error"));
    check!(r, "zrandmember j 9223372036854775807 withscores", err("ERR value is out of range"));
    let rep = r.qraw("zrandmember j -5");
    assert!(rep.starts_with("*5\r\n"), "{rep}");
    let rep = r.qraw("zrandmember j 1");
    assert!(rep == bulks(&["a"]) || rep == bulks(&["b"]), "{rep}");
    let rep = r.qraw("zrandmember j");
    assert!(rep == bulk("a") || rep == bulk("b"), "{rep}");
    // ZSCAN: whole listpack in one call; skiplist by cursor.
    check!(r, "zscan j 0", arr(&[bulk("0"), bulks(&["a", "1", "b", "2"])]));
    check!(r, "zscan j 0 match a*", arr(&[bulk("0"), bulks(&["a", "1"])]));
    check!(r, "zscan nokey 0", arr(&[bulk("0"), EMPTY.into()]));
    check!(r, "zscan j 0 count 0", err("ERR syntax error"));
    check!(r, "zscan j x", err("ERR invalid cursor"));
    let long = "y".repeat(70);
    for i in 0..50 {
        r.qraw(&format!("zadd sk {i} {long}{i}"));
    }
    let mut cursor = "0".to_string();
    let mut seen = 0;
    loop {
        let rep = r.cmd_raw(&[b"zscan", b"sk", cursor.as_bytes(), b"count", b"7"]);
        let lines: Vec<&str> = rep.split("\r\n").collect();
        cursor = lines[2].to_string();
        let n: usize = lines[3][1..].parse().unwrap();
        seen += n / 2;
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen, 50);
    r.qraw("hello 3");
    check!(r, "zpopmin j 1", "*1\r\n*2\r\n$1\r\na\r\n,1\r\n");
    check!(r, "zpopmax j", "*2\r\n$1\r\nb\r\n,2\r\n");
}

#[test]
fn zset_keyspace_notifications() {
    let p = ferrocache(&[]);
    let mut r = Raw::connect(p.port);
    let mut sub = Raw::connect(p.port);
    check!(r, "config set notify-keyspace-events KEA", "+OK\r\n");
    sub.qraw("psubscribe __keyevent@0__:*");
    fn expect(r: &mut Raw, sub: &mut Raw, cmd: &str, events: &[(&str, &str)]) {
        r.qraw(cmd);
        for (ev, key) in events {
            let m = sub.read_str();
            let want =
                arr(&[bulk("pmessage"), bulk("__keyevent@0__:*"), bulk(&format!("__keyevent@0__:{ev}")), bulk(key)]);
            assert_eq!(m, want, "after {cmd}");
        }
    }
    expect(&mut r, &mut sub, "zadd z 1 a 2 b 3 c", &[("zadd", "z")]);
    expect(&mut r, &mut sub, "zincrby z 1 a", &[("zincr", "z")]);
    expect(&mut r, &mut sub, "zrem z a", &[("zrem", "z")]);
    expect(&mut r, &mut sub, "zremrangebyscore z 2 2", &[("zremrangebyscore", "z")]);
    expect(&mut r, &mut sub, "zadd z 5 e 6 f", &[("zadd", "z")]);
    expect(&mut r, &mut sub, "zremrangebyrank z 0 0", &[("zremrangebyrank", "z")]);
    expect(&mut r, &mut sub, "zadd l 0 a 0 b", &[("zadd", "l")]);
    expect(&mut r, &mut sub, "zremrangebylex l [a [a", &[("zremrangebylex", "l")]);
    expect(&mut r, &mut sub, "zunionstore u 2 z l", &[("zunionstore", "u")]);
    expect(&mut r, &mut sub, "zinterstore u 2 z z", &[("zinterstore", "u")]);
    expect(&mut r, &mut sub, "zdiffstore u 2 z l", &[("zdiffstore", "u")]);
    expect(&mut r, &mut sub, "zrangestore u z 0 0", &[("zrangestore", "u")]);
    expect(&mut r, &mut sub, "zdiffstore u 2 z z", &[("del", "u")]);
    expect(&mut r, &mut sub, "zpopmin z", &[("zpopmin", "z")]);
    expect(&mut r, &mut sub, "zpopmax z", &[("zpopmax", "z"), ("del", "z")]);
    expect(&mut r, &mut sub, "zrem l b", &[("zrem", "l"), ("del", "l")]);
    expect(&mut r, &mut sub, "geoadd g 13.361389 38.115556 Palermo", &[("zadd", "g")]);
    expect(&mut r, &mut sub, "geosearchstore gs g fromlonlat 13 38 byradius 100 km", &[("geosearchstore", "gs")]);
    expect(&mut r, &mut sub, "georadius g 13 38 100 km store gr", &[("georadiusstore", "gr")]);
    expect(&mut r, &mut sub, "pfadd h a b", &[("pfadd", "h")]);
    expect(&mut r, &mut sub, "pfmerge h2 h", &[("pfadd", "h2")]);
    expect(&mut r, &mut sub, "sort g alpha store sl", &[("sortstore", "sl")]);
    // No event when nothing changes.
    r.qraw("zadd z2 1 a");
    sub.read_str();
    expect(&mut r, &mut sub, "zadd z2 nx 5 a", &[]);
    expect(&mut r, &mut sub, "pfadd h a", &[]);
    expect(&mut r, &mut sub, "zadd z2 2 a", &[("zadd", "z2")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_pops_from_several_connections() {
    let p = ferrocache(&[]);
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", p.port)).unwrap();
    let mut waiters = Vec::new();
    for i in 0..3 {
        let c = client.clone();
        waiters.push(tokio::spawn(async move {
            let mut con = c.get_multiplexed_async_connection().await.unwrap();
            let v: Option<(String, String, f64)> =
                redis::cmd("BZPOPMIN").arg("q1").arg("q2").arg(5).query_async(&mut con).await.unwrap();
            (i, v)
        }));
    }
    let bzm = {
        let c = client.clone();
        tokio::spawn(async move {
            let mut con = c.get_multiplexed_async_connection().await.unwrap();
            let v: redis::Value = redis::cmd("BZMPOP")
                .arg(5)
                .arg(1)
                .arg("q3")
                .arg("MAX")
                .arg("COUNT")
                .arg(2)
                .query_async(&mut con)
                .await
                .unwrap();
            v
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = redis::cmd("ZADD")
        .arg("q2")
        .arg(1)
        .arg("a")
        .arg(2)
        .arg("b")
        .arg(3)
        .arg("c")
        .query_async(&mut con)
        .await
        .unwrap();
    let _: i64 = redis::cmd("ZADD")
        .arg("q3")
        .arg(1)
        .arg("x")
        .arg(2)
        .arg("y")
        .arg(3)
        .arg("z")
        .query_async(&mut con)
        .await
        .unwrap();
    let mut got = Vec::new();
    for w in waiters {
        let (_, v) = w.await.unwrap();
        let (k, m, s) = v.expect("woken");
        assert_eq!(k, "q2");
        got.push((m, s));
    }
    got.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap());
    assert_eq!(got, vec![("a".to_string(), 1.0), ("b".to_string(), 2.0), ("c".to_string(), 3.0)]);
    let v = bzm.await.unwrap();
    let want = redis::Value::Array(vec![
        redis::Value::BulkString(b"q3".to_vec()),
        redis::Value::Array(vec![
            redis::Value::Array(vec![redis::Value::BulkString(b"z".to_vec()), redis::Value::BulkString(b"3".to_vec())]),
            redis::Value::Array(vec![redis::Value::BulkString(b"y".to_vec()), redis::Value::BulkString(b"2".to_vec())]),
        ]),
    ]);
    assert_eq!(v, want);
    let left: Vec<String> = redis::cmd("ZRANGE").arg("q3").arg(0).arg(-1).query_async(&mut con).await.unwrap();
    assert_eq!(left, vec!["x".to_string()]);
    let exists: i64 = redis::cmd("EXISTS").arg("q2").query_async(&mut con).await.unwrap();
    assert_eq!(exists, 0);
    // Timeout: null array.
    let t = Instant::now();
    let v: redis::Value = redis::cmd("BZPOPMAX").arg("never").arg(0.2).query_async(&mut con).await.unwrap();
    assert_eq!(v, redis::Value::Nil);
    assert!(t.elapsed() >= Duration::from_millis(150));
}

#[test]
fn geo_commands() {
    let p = ferrocache(&[]);
    let mut r = Raw::connect(p.port);
    check!(r, "geoadd Sicily 13.361389 38.115556 Palermo 15.087269 37.502669 Catania", int(2));
    check!(r, "geoadd Sicily nx ch 13.361389 38.115556 Palermo 12 37 Trapani", int(1));
    check!(r, "geoadd Sicily xx ch 13.5 38.1 Palermo 1 1 Nowhere", int(1));
    check!(r, "geoadd Sicily nx xx 1 1 a", err("ERR syntax error"));
    check!(r, "geoadd Sicily 1 1 a b", err("ERR syntax error"));
    check!(r, "geoadd Sicily 200 100 x", err("ERR invalid longitude,latitude pair 200.000000,100.000000"));
    check!(r, "geoadd Sicily abc 1 x", err("ERR value is not a valid float"));
    check!(r, "geoadd Sicily 13.361389 38.115556 Palermo", int(0));
    check!(r, "zscore Sicily Palermo", bulk("3479099956230698"));
    check!(r, "geodist Sicily Palermo Catania", bulk("166274.1516"));
    check!(r, "geodist Sicily Palermo Catania km", bulk("166.2742"));
    check!(r, "geodist Sicily Palermo Catania foo", err("ERR unsupported unit provided. please use M, KM, FT, MI"));
    check!(r, "geodist Sicily Palermo Catania km x", err("ERR syntax error"));
    check!(r, "geodist Sicily Palermo nope", NIL);
    check!(r, "geohash Sicily Palermo Catania nope", arr(&[bulk("sqc8b49rny0"), bulk("sqdtr74hyu0"), NIL.into()]));
    check!(
        r,
        "geopos Sicily Palermo nope",
        arr(&[bulks(&["13.36138933897018433", "38.11555639549629859"]), "*-1\r\n".into()])
    );
    check!(r, "georadius Sicily 15 37 200 km asc", bulks(&["Catania", "Palermo"]));
    check!(
        r,
        "georadius Sicily 15 37 200 km withdist withhash withcoord count 1",
        arr(&[arr(&[
            bulk("Catania"),
            bulk("56.4413"),
            int(3479447370796909),
            bulks(&["15.08726745843887329", "37.50266842333162032"])
        ])])
    );
    check!(r, "georadius Sicily 15 37 200 km count 0", err("ERR COUNT must be > 0"));
    check!(r, "georadius Sicily 15 37 200 km any", err("ERR the ANY argument requires COUNT argument"));
    check!(r, "georadius Sicily 15 37 -1 km", err("ERR radius cannot be negative"));
    check!(r, "georadius Sicily 15 37 x km", err("ERR need numeric radius"));
    check!(
        r,
        "georadius Sicily 15 37 200 km store dst withdist",
        err("ERR STORE option in GEORADIUS is not compatible with WITHDIST, WITHHASH and WITHCOORD options")
    );
    check!(r, "georadius Sicily 15 37 200 km storedist dst", int(2));
    check!(r, "zrange dst 0 -1 withscores", bulks(&["Catania", "56.441257870158204", "Palermo", "190.44242984775784"]));
    check!(r, "georadius_ro Sicily 15 37 200 km store dst", err("ERR syntax error"));
    check!(r, "georadiusbymember Sicily Palermo 200 km", bulks(&["Palermo", "Catania", "Trapani"]));
    check!(r, "georadiusbymember Sicily nope 200 km", err("ERR could not decode requested zset member"));
    check!(r, "georadiusbymember_ro Sicily Palermo 10 km", bulks(&["Palermo"]));
    check!(r, "geosearch Sicily frommember Palermo bybox 400 400 km desc", bulks(&["Trapani", "Catania", "Palermo"]));
    check!(
        r,
        "geosearch Sicily byradius 1 km asc withdist",
        err("ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for geosearch")
    );
    check!(
        r,
        "geosearch Sicily frommember Palermo asc withdist withhash",
        err("ERR exactly one of BYRADIUS and BYBOX can be specified for geosearch")
    );
    check!(r, "geosearch Sicily frommember Palermo bybox -1 1 km", err("ERR height or width cannot be negative"));
    check!(r, "geosearch Sicily frommember Palermo bybox x 1 km", err("ERR need numeric width"));
    check!(r, "geosearch Sicily fromlonlat 1 1 byradius 1 km store x", err("ERR syntax error"));
    check!(r, "geosearch nokey frommember x byradius 1 km", EMPTY);
    check!(r, "geosearchstore gs Sicily fromlonlat 15 37 byradius 200 km storedist", int(2));
    check!(
        r,
        "geosearchstore gs Sicily fromlonlat 15 37 byradius 200 km withdist",
        err("ERR GEOSEARCHSTORE is not compatible with WITHDIST, WITHHASH and WITHCOORD options")
    );
    check!(r, "geosearchstore gs Sicily fromlonlat 15 37 byradius 2 km", int(0));
    check!(r, "exists gs", int(0));
    r.qraw("hello 3");
    check!(r, "geopos Sicily Catania nope", "*2\r\n*2\r\n,15.08726745843887329\r\n,37.50266842333162032\r\n_\r\n");
    check!(
        r,
        "geosearch Sicily fromlonlat 15 37 byradius 100 km withcoord withdist",
        "*1\r\n*3\r\n$7\r\nCatania\r\n$7\r\n56.4413\r\n*2\r\n,15.08726745843887329\r\n,37.50266842333162032\r\n"
    );
}

#[test]
fn hll_commands() {
    let p = ferrocache(&[]);
    let mut r = Raw::connect(p.port);
    check!(r, "pfadd h a b c d e f g", int(1));
    check!(r, "pfadd h a", int(0));
    check!(r, "pfadd h", int(0));
    check!(r, "pfadd h2", int(1));
    check!(r, "pfcount h", int(7));
    check!(r, "pfcount h h2 nokey", int(7));
    check!(r, "pfcount nokey", int(0));
    r.qraw("set s foo");
    check!(r, "pfadd s a", err("WRONGTYPE Key is not a valid HyperLogLog string value."));
    check!(r, "pfcount s", err("WRONGTYPE Key is not a valid HyperLogLog string value."));
    check!(r, "pfmerge s h", err("WRONGTYPE Key is not a valid HyperLogLog string value."));
    r.qraw("zadd z 1 a");
    check!(r, "pfadd z a", err("WRONGTYPE Operation against a key holding the wrong kind of value"));
    check!(r, "pfmerge h3 h h2 nokey", "+OK\r\n");
    check!(r, "pfcount h3", int(7));
    check!(r, "pfdebug encoding h3", "+sparse\r\n");
    check!(r, "pfdebug todense h3", int(1));
    check!(r, "pfdebug todense h3", int(0));
    check!(r, "pfdebug encoding h3", "+dense\r\n");
    check!(r, "pfdebug decode h3", err("ERR HLL encoding is not sparse"));
    check!(r, "pfdebug decode h2", bulk("Z:16384"));
    check!(r, "pfdebug foo h3", err("ERR Unknown PFDEBUG subcommand 'foo'"));
    check!(r, "pfdebug encoding nokey", err("ERR The specified key does not exist"));
    check!(r, "object encoding h", bulk("raw"));
    let rep = r.qraw("pfdebug getreg h3");
    assert!(rep.starts_with("*16384\r\n"));
    // The cached cardinality is written back in place (GET shows a valid cache afterwards).
    r.qraw("pfadd c x y z");
    let before = r.qraw("get c");
    check!(r, "pfcount c", int(3));
    let after = r.qraw("get c");
    assert_ne!(before, after, "PFCOUNT must store the cached cardinality");
    let mut args: Vec<String> = vec!["pfadd".into(), "big".into()];
    for i in 0..20000 {
        args.push(format!("e{i}"));
    }
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    assert_eq!(r.cmd_raw(&a), int(1));
    let n: i64 = r.qraw("pfcount big")[1..].trim().parse().unwrap();
    assert!((19000..21000).contains(&n), "{n}");
    check!(r, "pfdebug encoding big", "+dense\r\n");
}

#[test]
fn sort_command() {
    let p = ferrocache(&[]);
    let mut r = Raw::connect(p.port);
    r.qraw("zadd z 3 c 1 a 2 b 10 d");
    r.qraw("mset w_a 5 w_b 1 w_c 9 w_d x o_a A o_b B o_c C");
    r.qraw("hset h_a f 3");
    r.qraw("hset h_b f 1");
    r.qraw("hset h_c f 2");
    check!(r, "sort z", err("ERR One or more scores can't be converted into double"));
    r.qraw("zadd n 3 3 1 1 2 2 10 10");
    check!(r, "sort n", bulks(&["1", "2", "3", "10"]));
    check!(r, "sort n desc limit 1 2", bulks(&["3", "2"]));
    check!(r, "sort n alpha", bulks(&["1", "10", "2", "3"]));
    check!(r, "sort z alpha desc limit 1 2", bulks(&["c", "b"]));
    check!(r, "sort z by w_* alpha", bulks(&["b", "a", "c", "d"]));
    check!(r, "sort z by w_*", err("ERR One or more scores can't be converted into double"));
    r.qraw("set w_d 0.5");
    check!(r, "sort z by w_*", bulks(&["d", "b", "a", "c"]));
    check!(
        r,
        "sort z by w_* get o_* get # get nope",
        arr(&[
            NIL.into(),
            bulk("d"),
            NIL.into(),
            bulk("B"),
            bulk("b"),
            NIL.into(),
            bulk("A"),
            bulk("a"),
            NIL.into(),
            bulk("C"),
            bulk("c"),
            NIL.into()
        ])
    );
    check!(r, "sort z by nosort", bulks(&["a", "b", "c", "d"]));
    check!(r, "sort z by nosort desc limit 1 2", bulks(&["c", "b"]));
    check!(
        r,
        "sort z by h_*->f get h_*->f get #",
        arr(&[NIL.into(), bulk("d"), bulk("1"), bulk("b"), bulk("2"), bulk("c"), bulk("3"), bulk("a")])
    );
    check!(r, "sort z limit 10 5 alpha", EMPTY);
    check!(r, "sort z limit x 2", err("ERR value is not an integer or out of range"));
    check!(r, "sort z foo", err("ERR syntax error"));
    check!(r, "sort z alpha get o_* store dst", int(4));
    check!(r, "type dst", "+list\r\n");
    check!(r, "object encoding dst", bulk("quicklist"));
    check!(r, "sort nokey store dst", int(0));
    check!(r, "exists dst", int(0));
    check!(r, "sort nokey", EMPTY);
    check!(r, "sort w_a", err("WRONGTYPE Operation against a key holding the wrong kind of value"));
    check!(r, "sort_ro z alpha store dst", err("ERR syntax error"));
    check!(r, "sort_ro z by w_* get o_*", arr(&[NIL.into(), bulk("B"), bulk("A"), bulk("C")]));
    // SORT converts a listpack sorted set to skiplist, as Redis does.
    check!(r, "object encoding z", bulk("skiplist"));
    // Inside MULTI with patterns (every shard held by EXEC).
    check!(r, "multi", "+OK\r\n");
    check!(r, "sort z by w_* get o_*", "+QUEUED\r\n");
    check!(r, "sort n store s2", "+QUEUED\r\n");
    check!(r, "exec", arr(&[arr(&[NIL.into(), bulk("B"), bulk("A"), bulk("C")]), int(4)]));
}

/// Several connections running SORT with patterns and multi-key writes at once: no deadlock.
#[test]
fn sort_with_patterns_does_not_deadlock() {
    let p = ferrocache(&[]);
    let mut r = Raw::connect(p.port);
    for i in 0..50 {
        r.qraw(&format!("zadd z{} {i} m{i}", i % 5));
        r.qraw(&format!("set w_m{i} {}", 100 - i));
    }
    let port = p.port;
    let hs: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Raw::connect(port);
                for i in 0..200 {
                    if t % 2 == 0 {
                        let rep = c.qraw(&format!("sort z{} by w_* get # store out{t}", i % 5));
                        assert!(rep.starts_with(':'), "{rep}");
                    } else {
                        let rep = c.qraw(&format!("zunionstore z{} 2 z{} z{}", i % 5, (i + 1) % 5, i % 5));
                        assert!(rep.starts_with(':'), "{rep}");
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
}

/// Runs the same commands against ferrocache and a real redis-server, comparing raw replies.
#[test]
fn differential_against_redis_server() {
    let Some(redis) = redis_server(&[]) else {
        println!("redis-server not on PATH: skipping the differential comparison");
        return;
    };
    let node = ferrocache(&[]);
    let mut ours = Raw::connect(node.port);
    let mut theirs = Raw::connect(redis.port);
    let mut rng_state: u64 = 0x9e3779b97f4a7c15;
    let mut rnd = move || {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state
    };
    let mut script: Vec<Vec<String>> = Vec::new();
    // Random geo points and searches.
    let mut geoadd = vec!["geoadd".to_string(), "pts".to_string()];
    for i in 0..300 {
        let lon = (rnd() % 3_600_000) as f64 / 10_000.0 - 180.0;
        let lat = (rnd() % 1_700_000) as f64 / 10_000.0 - 85.0;
        geoadd.push(format!("{lon}"));
        geoadd.push(format!("{lat}"));
        geoadd.push(format!("p{i}"));
    }
    script.push(geoadd);
    for i in 0..40 {
        let lon = (rnd() % 3_600_000) as f64 / 10_000.0 - 180.0;
        let lat = (rnd() % 1_600_000) as f64 / 10_000.0 - 80.0;
        let rad = (rnd() % 3000) as f64 + 0.5;
        let unit = ["m", "km", "mi", "ft"][i % 4];
        let s = |v: &str| v.to_string();
        script.push(vec![
            s("geosearch"),
            s("pts"),
            s("fromlonlat"),
            lon.to_string(),
            lat.to_string(),
            s("byradius"),
            rad.to_string(),
            s("km"),
            s("withdist"),
            s("withcoord"),
            s("withhash"),
            s("asc"),
        ]);
        script.push(vec![
            s("geosearch"),
            s("pts"),
            s("fromlonlat"),
            lon.to_string(),
            lat.to_string(),
            s("bybox"),
            (rad * 2.0).to_string(),
            rad.to_string(),
            s(unit),
            s("withdist"),
            s("desc"),
        ]);
        script.push(vec![
            s("georadius"),
            s("pts"),
            lon.to_string(),
            lat.to_string(),
            rad.to_string(),
            s("km"),
            s("count"),
            s("5"),
            s("withdist"),
        ]);
        script.push(vec![
            s("georadiusbymember"),
            s("pts"),
            format!("p{}", i * 7),
            (rad * 1000.0).to_string(),
            s("m"),
            s("withcoord"),
            s("asc"),
        ]);
        script.push(vec![s("geodist"), s("pts"), format!("p{i}"), format!("p{}", i + 100), s(unit)]);
        script.push(vec![s("geohash"), s("pts"), format!("p{i}"), format!("p{}", i + 1), s("none")]);
        script.push(vec![s("geopos"), s("pts"), format!("p{i}"), s("none")]);
        script.push(vec![
            s("geosearchstore"),
            s("dst"),
            s("pts"),
            s("frommember"),
            format!("p{i}"),
            s("byradius"),
            rad.to_string(),
            s("km"),
            s("storedist"),
        ]);
        script.push(vec![s("zrange"), s("dst"), s("0"), s("-1"), s("withscores")]);
    }
    // HLL: random sets of several sizes, single and multi-key counts, merges and raw bytes.
    for (i, n) in [1usize, 10, 100, 1000, 5000, 20000].iter().enumerate() {
        let mut cmd = vec!["pfadd".to_string(), format!("hll{i}")];
        for _ in 0..*n {
            cmd.push(format!("{:x}", rnd()));
        }
        script.push(cmd);
        script.push(vec!["pfcount".into(), format!("hll{i}")]);
        script.push(vec!["get".into(), format!("hll{i}")]);
        script.push(vec!["pfcount".into(), "hll0".into(), format!("hll{i}"), "nokey".into()]);
        script.push(vec!["pfmerge".into(), "merged".into(), format!("hll{i}")]);
        script.push(vec!["pfcount".into(), "merged".into()]);
        script.push(vec!["get".into(), "merged".into()]);
    }
    // A sample of sorted-set commands in both protocols.
    let lines = [
        "zadd z 1 a 2 b 3 c 1.5 d -inf e +inf f",
        "zrange z 0 -1 withscores",
        "zrange z (1 3 byscore withscores limit 1 10",
        "zrangebyscore z -inf +inf withscores",
        "zunion 2 z z weights 0.5 3 aggregate max withscores",
        "zinter 1 z withscores",
        "zpopmin z 2",
        "zmpop 1 z max count 2",
        "zrandmember z 10 withscores",
        "zscan z 0",
        "geopos pts p1 p2",
        "geosearch pts frommember p3 byradius 2000 km withcoord withdist count 3",
    ];
    for proto in ["2", "3"] {
        script.push(vec!["hello".into(), proto.into()]);
        for l in lines {
            script.push(l.split_whitespace().map(|s| s.to_string()).collect());
        }
    }
    for cmd in &script {
        let a: Vec<&[u8]> = cmd.iter().map(|s| s.as_bytes()).collect();
        let mine = ours.cmd_raw(&a);
        let real = theirs.cmd_raw(&a);
        if cmd[0] == "hello" {
            continue;
        }
        assert_eq!(mine, real, "differs from redis-server for {:?}", &cmd[..cmd.len().min(8)]);
    }
}

/// SORT over lists and sets, and plain sets as ZUNION/ZINTER inputs (score 1).
#[test]
fn sort_lists_sets_and_set_inputs() {
    let p = ferrocache(&[]);
    let mut r = Raw::connect(p.port);
    r.qraw("rpush l 3 1 2 10");
    check!(r, "sort l", bulks(&["1", "2", "3", "10"]));
    check!(r, "sort l desc alpha", bulks(&["3", "2", "10", "1"]));
    check!(r, "sort l by nosort", bulks(&["3", "1", "2", "10"]));
    check!(r, "sort l by nosort desc limit 0 2", bulks(&["10", "2"]));
    r.qraw("sadd s c a b");
    check!(r, "sort s alpha", bulks(&["a", "b", "c"]));
    // BY nosort with STORE on a set is forced to an ALPHA sort (deterministic).
    check!(r, "sort s by nosort store out", int(3));
    check!(r, "lrange out 0 -1", bulks(&["a", "b", "c"]));
    r.qraw("zadd z 5 a 7 q");
    check!(r, "zunion 2 s z withscores", bulks(&["b", "1", "c", "1", "a", "6", "q", "7"]));
    check!(r, "zinter 2 s z weights 2 1 withscores", bulks(&["a", "7"]));
    check!(r, "zdiff 2 s z", bulks(&["b", "c"]));
    check!(r, "zinterstore d 2 s s aggregate max", int(3));
    check!(r, "zrange d 0 -1 withscores", bulks(&["a", "1", "b", "1", "c", "1"]));
    check!(r, "zintercard 2 s z", int(1));
}
