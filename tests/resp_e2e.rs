//! End-to-end tests over TCP: the `redis` crate (RESP2 and RESP3) and raw sockets against a
//! ferrocache process, most of them compared byte for byte with a real redis-server started by
//! the test (skipped, with a SKIPPED line, when redis-server is not installed): replies of every
//! part-1 family in RESP2 and RESP3, RESP3 forms and push messages, inline commands,
//! pipelining, protocol errors and limits. Transactions, notifications, tracking and client
//! commands: tests/resp_clients.rs; configuration, memory, INFO and server commands:
//! tests/resp_server.rs; helpers: tests/common/resp.rs.

mod common;
#[path = "common/resp.rs"]
mod resp;

use common::{encode, Raw, Reply};
use resp::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// commands through the redis crate, RESP2 and RESP3

#[test]
fn redis_crate_resp2_and_resp3() {
    let f = common::ferrocache(&[]);
    let mut c = f.sync();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut c).unwrap();
    assert_eq!(v, "v");
    let n: i64 = redis::cmd("INCRBY").arg("n").arg(41).query(&mut c).unwrap();
    assert_eq!(n, 41);
    let _: () = redis::cmd("HSET").arg("h").arg("a").arg("1").arg("b").arg("2").query(&mut c).unwrap();
    let all: Vec<(String, String)> = redis::cmd("HGETALL").arg("h").query(&mut c).unwrap();
    assert_eq!(all, vec![("a".into(), "1".into()), ("b".into(), "2".into())]);
    let fl: String = redis::cmd("INCRBYFLOAT").arg("f").arg("0.1").query(&mut c).unwrap();
    assert_eq!(fl, "0.1");
    let fl: String = redis::cmd("INCRBYFLOAT").arg("f").arg("0.2").query(&mut c).unwrap();
    assert_eq!(fl, "0.3");

    // RESP3 through the crate: maps, nulls, verbatim-free INFO, HELLO.
    let c3 = redis::Client::open(f.url3()).unwrap();
    let mut c3 = c3.get_connection().unwrap();
    let v: redis::Value = redis::cmd("HGETALL").arg("h").query(&mut c3).unwrap();
    match v {
        redis::Value::Map(m) => assert_eq!(m.len(), 2),
        other => panic!("HGETALL in RESP3 is not a map: {:?}", other),
    }
    let v: redis::Value = redis::cmd("GET").arg("missing").query(&mut c3).unwrap();
    assert_eq!(v, redis::Value::Nil);
    let v: redis::Value = redis::cmd("CONFIG").arg("GET").arg("maxmemory").query(&mut c3).unwrap();
    assert!(matches!(v, redis::Value::Map(_)), "CONFIG GET in RESP3: {:?}", v);
    let v: redis::Value = redis::cmd("HELLO").arg("3").query(&mut c3).unwrap();
    let redis::Value::Map(m) = v else { panic!("HELLO 3 is not a map") };
    let keys: Vec<String> = m.iter().map(|(k, _)| redis::from_redis_value::<String>(k).unwrap()).collect();
    assert_eq!(keys, vec!["server", "version", "proto", "id", "mode", "role", "modules"]);

    // Async connection (tokio), pipelined.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = redis::Client::open(f.url()).unwrap();
        let mut a = client.get_multiplexed_async_connection().await.unwrap();
        let (x, y): (i64, i64) =
            redis::pipe().cmd("INCR").arg("p").cmd("INCR").arg("p").query_async(&mut a).await.unwrap();
        assert_eq!((x, y), (1, 2));
    });
}

// ---------------------------------------------------------------------------------------------
// byte-exact replies of every part-1 family, RESP2 and RESP3, against redis-server

fn script() -> Vec<Vec<&'static [u8]>> {
    let lines = [
        // strings
        "SET s hello",
        "GET s",
        "GET nosuch",
        "SET s world NX",
        "SET s2 v XX",
        "SET s v GET",
        "SETNX s x",
        "SETEX ex 100 v",
        "PSETEX pex 100000 v",
        "GETSET s w",
        "GETDEL s",
        "GETEX ex PERSIST",
        "TTL ex",
        "MSET a 1 b 2 c 3",
        "MGET a b nosuch c",
        "MSETNX a 1 z 2",
        "APPEND a xyz",
        "STRLEN a",
        "INCR n",
        "INCRBY n 10",
        "DECR n",
        "DECRBY n 3",
        "INCRBYFLOAT fl 1.5",
        "INCRBYFLOAT fl 1e3",
        "INCR a",
        "SETRANGE r 5 abc",
        "GET r",
        "GETRANGE r 0 -1",
        "SUBSTR r 1 3",
        "SET l1 ohmytext",
        "SET l2 mynewtext",
        "LCS l1 l2",
        "LCS l1 l2 LEN",
        "LCS l1 l2 IDX MINMATCHLEN 2 WITHMATCHLEN",
        "SET big 99999999999999999999",
        "INCR big",
        "SET e ''",
        "SET k v EX 0",
        "SET k v PX -1",
        "SET k v EX 10 PX 10",
        "SET k v KEEPTTL EX 10",
        // bits
        "SETBIT bm 7 1",
        "SETBIT bm 100 1",
        "GETBIT bm 7",
        "BITCOUNT bm",
        "BITCOUNT bm 0 0",
        "BITCOUNT bm 0 15 BIT",
        "BITPOS bm 1",
        "BITPOS bm 0 0 -1 BIT",
        "BITOP AND dst bm r",
        "BITOP NOT dst2 bm",
        "BITOP NOT dst2 bm r",
        "BITFIELD bf SET u8 0 255 GET u8 0 INCRBY i5 100 1 OVERFLOW SAT INCRBY u2 102 5",
        "BITFIELD_RO bf GET u8 0",
        "BITFIELD_RO bf SET u8 0 1",
        "SETBIT bm 4294967296 1",
        "SETBIT bm 1 2",
        // keys
        "EXISTS a b nosuch",
        "TYPE a",
        "TYPE nosuch",
        "EXPIRE a 100",
        "TTL a",
        "PTTL nosuch",
        "EXPIRE a 100 NX",
        "EXPIRE a 50 GT",
        "EXPIRE a 200 XX",
        "EXPIRE a 10 NX XX",
        "PERSIST a",
        "TTL a",
        "RENAME a a2",
        "RENAME nosuch x",
        "RENAMENX a2 b",
        "COPY a2 a3",
        "COPY a2 a3",
        "COPY a2 a3 REPLACE",
        "MOVE a3 1",
        "SELECT 1",
        "GET a3",
        "SELECT 0",
        "SWAPDB 0 1",
        "DBSIZE",
        "SWAPDB 0 1",
        "KEYS a*",
        "TOUCH a2 b nosuch",
        "UNLINK a2",
        "DEL b c nosuch",
        "OBJECT ENCODING n",
        "OBJECT ENCODING r",
        "OBJECT ENCODING nosuch",
        "OBJECT FREQ n",
        "OBJECT HELP",
        "EXPIRETIME nosuch",
        "PEXPIRETIME n",
        "EXPIREAT n 1",
        // hashes
        "HSET h f1 v1 f2 v2",
        "HSETNX h f1 x",
        "HGET h f1",
        "HMGET h f1 nosuch f2",
        "HLEN h",
        "HSTRLEN h f1",
        "HEXISTS h f3",
        "HKEYS h",
        "HVALS h",
        "HGETALL h",
        "HINCRBY h c 5",
        "HINCRBYFLOAT h fl 2.5",
        "HINCRBY h f1 1",
        "HDEL h f1 nosuch",
        "HMSET h a 1",
        "HRANDFIELD nosuch",
        "HRANDFIELD h 0",
        "HSCAN h 0",
        "HGETALL nosuch",
        "HSET s x y",
        "GET h",
        // connection and server
        "PING",
        "PING hi",
        "ECHO hi",
        "SELECT 99",
        "CLIENT GETNAME",
        "CLIENT SETNAME my-name",
        "CLIENT GETNAME",
        "CLIENT SETNAME 'a b'",
        "CLIENT NO-EVICT on",
        "CLIENT REPLY bogus",
        "CLIENT CACHING yes",
        "CLIENT TRACKING off",
        "CLIENT GETREDIR",
        "CLIENT TRACKINGINFO",
        "CONFIG GET maxmemory",
        "CONFIG SET maxmemory-policy bogus",
        "CONFIG SET nosuch 1",
        "CONFIG GET hz",
        "SLOWLOG LEN",
        "SLOWLOG BOGUS",
        "LATENCY LATEST",
        "COMMAND COUNT_BOGUS",
        "PUBLISH ch msg",
        "PUBSUB NUMSUB ch",
        "PUBSUB NUMPAT",
        "PUBSUB CHANNELS",
        "MEMORY USAGE nosuch",
        "WAIT 0 0",
        "LASTSAVE_X",
        "FLUSHDB bogus",
        "FLUSHDB ASYNC",
        "DBSIZE",
        // transactions
        "MULTI",
        "SET t 1",
        "INCR t",
        "HSET t f v",
        "EXEC",
        "MULTI",
        "GET",
        "EXEC",
        "MULTI",
        "DISCARD",
        "EXEC",
        "WATCH t",
        "MULTI",
        "WATCH t",
        "DISCARD",
        "UNWATCH",
        // errors
        "GETT x",
        "GET",
        "SET k",
        "HSET h f",
        "OBJECT nosuch",
        "CONFIG nosuch",
        "CLIENT nosuch",
        "INCR h",
        "HGET s f",
    ];
    lines
        .iter()
        .map(|l| l.split_whitespace().map(|w| if w == "''" { &b""[..] } else { w.as_bytes() }).collect())
        .collect()
}

#[test]
fn byte_exact_replies_resp2_and_resp3() {
    let Some(r) = redis_opt(&[]) else { return };
    for resp3 in [false, true] {
        let f = common::ferrocache(&[]);
        let r2 = common::redis_server(&[]).unwrap();
        same_replies(&f, Some(&r2), resp3, &script());
    }
    drop(r);
}

// ---------------------------------------------------------------------------------------------
// RESP3 specifics on raw sockets

#[test]
fn resp3_reply_forms() {
    let f = common::ferrocache(&[]);
    let mut c = f.conn();
    let hello = c.cmd(&["HELLO", "3"]);
    let Reply::Map(m) = &hello else { panic!("HELLO 3: {:?}", hello) };
    assert_eq!(m[0].0, Reply::Bulk(b"server".to_vec()));
    assert_eq!(m[2], (Reply::Bulk(b"proto".to_vec()), Reply::Int(3)));
    assert_eq!(c.read_raw_cmd(&["GET", "nosuch"]), b"_\r\n");
    c.cmd(&["HSET", "h", "a", "1"]);
    assert_eq!(c.read_raw_cmd(&["HGETALL", "h"]), b"%1\r\n$1\r\na\r\n$1\r\n1\r\n");
    assert_eq!(c.read_raw_cmd(&["CONFIG", "GET", "hz"]), b"%1\r\n$2\r\nhz\r\n$2\r\n10\r\n");
    // RESP2 again: the same replies in RESP2 forms.
    c.cmd(&["HELLO", "2"]);
    assert_eq!(c.read_raw_cmd(&["GET", "nosuch"]), b"$-1\r\n");
    assert_eq!(c.read_raw_cmd(&["HGETALL", "h"]), b"*2\r\n$1\r\na\r\n$1\r\n1\r\n");
    // HELLO errors
    assert_eq!(c.qraw("HELLO 4"), "-NOPROTO unsupported protocol version\r\n");
    assert_eq!(c.qraw("HELLO x"), "-ERR Protocol version is not an integer or out of range\r\n");
}

trait RawExt {
    fn read_raw_cmd(&mut self, args: &[&str]) -> Vec<u8>;
}

impl RawExt for Raw {
    fn read_raw_cmd(&mut self, args: &[&str]) -> Vec<u8> {
        self.send_cmd(args);
        self.read_raw()
    }
}

#[test]
fn resp3_pubsub_push_and_resp2_messages() {
    let f = common::ferrocache(&[]);
    let r = redis_opt(&[]);
    for p in std::iter::once(&f).chain(r.as_ref()) {
        // RESP3 subscriber: push frames, and regular commands still allowed while subscribed.
        let mut s = p.conn();
        s.cmd(&["HELLO", "3"]);
        s.send_cmd(&["SUBSCRIBE", "ch1", "ch2"]);
        assert_eq!(show(&s.read_raw()), ">3\\r\\n$9\\r\\nsubscribe\\r\\n$3\\r\\nch1\\r\\n:1\\r\\n", "{}", p.name);
        assert_eq!(show(&s.read_raw()), ">3\\r\\n$9\\r\\nsubscribe\\r\\n$3\\r\\nch2\\r\\n:2\\r\\n", "{}", p.name);
        assert_eq!(s.qraw("PING"), "+PONG\r\n", "{}", p.name);
        let mut s2 = p.conn();
        s2.send_cmd(&["PSUBSCRIBE", "c*"]);
        assert_eq!(show(&s2.read_raw()), "*3\\r\\n$10\\r\\npsubscribe\\r\\n$2\\r\\nc*\\r\\n:1\\r\\n");
        // RESP2 subscribed context refuses other commands.
        assert_eq!(
            s2.qraw("GET x"),
            "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
            "{}",
            p.name
        );
        assert_eq!(s2.qraw("PING"), "*2\r\n$4\r\npong\r\n$0\r\n\r\n", "{}", p.name);
        let mut pubc = p.conn();
        assert_eq!(pubc.cmd(&["PUBLISH", "ch1", "hello"]), Reply::Int(2));
        assert_eq!(
            show(&s.read_raw()),
            ">3\\r\\n$7\\r\\nmessage\\r\\n$3\\r\\nch1\\r\\n$5\\r\\nhello\\r\\n",
            "{}",
            p.name
        );
        assert_eq!(
            show(&s2.read_raw()),
            "*4\\r\\n$8\\r\\npmessage\\r\\n$2\\r\\nc*\\r\\n$3\\r\\nch1\\r\\n$5\\r\\nhello\\r\\n",
            "{}",
            p.name
        );
        assert_eq!(
            pubc.cmd(&["PUBSUB", "NUMSUB", "ch1", "ch3"]),
            Reply::Array(vec![
                Reply::Bulk(b"ch1".to_vec()),
                Reply::Int(1),
                Reply::Bulk(b"ch3".to_vec()),
                Reply::Int(0)
            ])
        );
        assert_eq!(pubc.cmd(&["PUBSUB", "NUMPAT"]), Reply::Int(1));
        s.send_cmd(&["UNSUBSCRIBE"]);
        let a = show(&s.read_raw());
        let b = show(&s.read_raw());
        assert!(
            a.starts_with(">3\\r\\n$11\\r\\nunsubscribe\\r\\n$3\\r\\nch") && a.ends_with(":1\\r\\n"),
            "{}: {}",
            p.name,
            a
        );
        assert!(
            b.starts_with(">3\\r\\n$11\\r\\nunsubscribe\\r\\n$3\\r\\nch") && b.ends_with(":0\\r\\n") && a != b,
            "{}: {}",
            p.name,
            b
        );
        assert_eq!(s.qraw("UNSUBSCRIBE"), ">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n", "{}", p.name);
        s2.send_cmd(&["RESET"]);
        assert_eq!(s2.read(), Reply::Simple("RESET".into()));
    }
}

// ---------------------------------------------------------------------------------------------
// inline commands, pipelining, protocol errors

#[test]
fn inline_commands() {
    let f = common::ferrocache(&[]);
    let r = redis_opt(&[]);
    let r = r.as_ref();
    same_transcript(&f, r, &[b"SET a b\r\nGET a\r\n"]);
    same_transcript(&f, r, &[b"PING\n", b"ECHO \"hello world\"\r\n", b"ECHO 'x y' \"\\x41\\n\"\r\n"]);
    same_transcript(&f, r, &[b"\r\n\r\nPING\r\n"]);
    same_transcript(&f, r, &[b"SET k \"unbalanced\r\nPING\r\n"]);
    same_transcript(&f, r, &[b"   \r\nEXISTS a\r\n"]);
}

#[test]
fn pipeline_of_10k_commands_in_one_write() {
    let f = common::ferrocache(&[]);
    let mut c = f.conn();
    let mut buf = Vec::new();
    for i in 0..10_000 {
        if i % 2 == 0 {
            buf.extend_from_slice(&encode(&["INCR", "counter"]));
        } else {
            buf.extend_from_slice(b"INCR counter\r\n");
        }
    }
    c.send(&buf);
    for i in 1..=10_000 {
        assert_eq!(c.read(), Reply::Int(i));
    }
    assert_eq!(c.cmd(&["GET", "counter"]), Reply::Bulk(b"10000".to_vec()));
}

#[test]
fn protocol_errors_close_like_redis() {
    let f = common::ferrocache(&[]);
    let r = redis_opt(&[]);
    let r = r.as_ref();
    let cases: &[&[&[u8]]] = &[
        &[b"*x\r\n"],
        &[b"*1\r\n$-2\r\n"],
        &[b"*1\r\n$x\r\n"],
        &[b"*1\r\nfoo\r\n"],
        &[b"*2\r\n$3\r\nGET\r\n:1\r\n"],
        &[b"*1048577\r\n"],
        &[b"*-1\r\nPING\r\n"],
        &[b"*0\r\nPING\r\n"],
        &[b"*1\r\n$4\r\nPINGxx\r\n"],
        &[b"PING\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\n*y\r\n"],
        &[b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$536870913\r\n"],
        &[b"$5\r\nxxxxx\r\n"],
        &[b"*1\r\n$2147483648\r\n"],
        &[b"*1\r\n$-1\r\n"],
        &[b"*1\r\n$0\r\n\r\n"],
    ];
    for c in cases {
        same_transcript(&f, r, c);
    }
    // Too big inline request (> 64 KiB without a newline): error and close.
    let big = vec![b'a'; 70 * 1024];
    let (out, closed) = same_transcript(&f, r, &[&big]);
    assert_eq!(show(&out), "-ERR Protocol error: too big inline request\\r\\n");
    assert!(closed);
    // Too big multibulk header line.
    let mut hdr = b"*1\r\n$".to_vec();
    hdr.extend(std::iter::repeat_n(b'1', 70 * 1024));
    same_transcript(&f, r, &[&hdr]);
    // The server is alive and well after all that.
    assert_eq!(f.conn().q("PING"), Reply::Simple("PONG".into()));
}

#[test]
fn oversized_bulk_vs_proto_max_bulk_len() {
    let f = common::ferrocache(&["--proto-max-bulk-len", "1mb"]);
    let r = redis_opt(&["--proto-max-bulk-len", "1mb"]);
    let r = r.as_ref();
    // Just below the limit is accepted; above is refused with Redis's text and a close.
    let ok = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", 1024 * 1024);
    let mut body = ok.into_bytes();
    body.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    body.extend_from_slice(b"\r\nSTRLEN k\r\n");
    let (out, _) = same_transcript(&f, r, &[&body]);
    assert_eq!(show(&out), "+OK\\r\\n:1048576\\r\\n");
    let (out, closed) =
        same_transcript(&f, r, &[format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", 1024 * 1024 + 1).as_bytes()]);
    assert_eq!(show(&out), "-ERR Protocol error: invalid bulk length\\r\\n");
    assert!(closed);
    // CONFIG SET applies to new requests.
    f.conn().q("CONFIG SET proto-max-bulk-len 2mb");
    if let Some(r) = r {
        r.conn().q("CONFIG SET proto-max-bulk-len 2mb");
    }
    same_transcript(&f, r, &[format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", 1024 * 1024 + 1).as_bytes()]);
}

#[test]
fn client_query_buffer_limit_closes_the_connection() {
    let f = common::ferrocache(&["--client-query-buffer-limit", "1mb"]);
    let mut c = f.conn();
    // A bulk announced below proto-max-bulk-len but a query buffer past the limit: closed.
    let mut s = TcpStream::connect(("127.0.0.1", f.port)).unwrap();
    s.write_all(format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", 4 * 1024 * 1024).as_bytes()).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut closed = false;
    for _ in 0..64 {
        if s.write_all(&chunk).is_err() {
            closed = true;
            break;
        }
    }
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 16];
    if !closed {
        closed = matches!(s.read(&mut b), Ok(0) | Err(_));
    }
    assert!(closed, "query buffer past client-query-buffer-limit must close the connection");
    assert_eq!(c.q("PING"), Reply::Simple("PONG".into()));
    assert_eq!(c.q("EXISTS k"), Reply::Int(0));
}

#[test]
fn arity_unknown_and_wrongtype_errors() {
    let f = common::ferrocache(&[]);
    let mut c = f.conn();
    assert_eq!(c.qraw("GET"), "-ERR wrong number of arguments for 'get' command\r\n");
    assert_eq!(c.qraw("GET a b"), "-ERR wrong number of arguments for 'get' command\r\n");
    assert_eq!(c.qraw("NOSUCH a b"), "-ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' \r\n");
    assert_eq!(c.qraw("CONFIG NOSUCH"), "-ERR unknown subcommand 'NOSUCH'. Try CONFIG HELP.\r\n");
    assert_eq!(c.qraw("CLIENT KILL"), "-ERR wrong number of arguments for 'client|kill' command\r\n");
    c.q("HSET h f v");
    assert_eq!(c.qraw("GET h"), "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    assert_eq!(c.qraw("INCR h"), "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
}

#[test]
fn half_sent_frames_and_garbage() {
    let f = common::ferrocache(&[]);
    let r = redis_opt(&[]);
    let r = r.as_ref();
    // A frame split at every position still yields exactly one reply.
    let frame = encode(&["SET", "split", "value"]);
    for cut in 1..frame.len() {
        let (out, closed) = transcript_with_first(
            f.port,
            &[&frame[..cut], &frame[cut..]],
            Duration::from_secs(5),
            Duration::from_millis(100),
        );
        assert_eq!(show(&out), "+OK\\r\\n", "cut at {}", cut);
        assert!(!closed);
    }
    // Byte-by-byte.
    let chunks: Vec<&[u8]> = frame.chunks(1).collect();
    same_transcript(&f, r, &chunks);
    // Seeded garbage: same transcript as Redis, and the server survives.
    let mut x: u64 = 0x9E3779B97F4A7C15;
    for _ in 0..40 {
        let len = (x % 200) as usize + 1;
        let mut g = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly protocol-looking bytes so the parser goes deep.
            g.push(b"*$:+-\r\n0123456789abcxyz \"'\\"[(x % 27) as usize]);
        }
        same_transcript(&f, r, &[&g]);
    }
    assert_eq!(f.conn().q("PING"), Reply::Simple("PONG".into()));
}
