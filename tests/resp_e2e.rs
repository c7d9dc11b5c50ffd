//! End-to-end tests over TCP: the `redis` crate (RESP2 and RESP3) and raw sockets against a
//! ferrocache process, most of them compared byte for byte with a real redis-server started by
//! the test (skipped, with a SKIPPED line, when redis-server is not installed).

mod common;

use common::{encode, Raw, Reply, ServerProc};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// helpers

/// Send raw bytes on a fresh connection and collect everything the server answers until it
/// closes the connection or stays silent for `idle`. Returns (bytes, closed).
/// Send `chunks` and collect everything until the connection stays quiet for `idle` (or closes).
fn transcript(port: u16, chunks: &[&[u8]], idle: Duration) -> (Vec<u8>, bool) {
    transcript_with_first(port, chunks, idle, idle)
}

/// `transcript`, waiting up to `first` for the first bytes (a reply that is expected should not
/// be missed because a loaded machine was slow to answer).
fn transcript_with_first(port: u16, chunks: &[&[u8]], first: Duration, idle: Duration) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).ok();
    for c in chunks {
        if s.write_all(c).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    s.set_read_timeout(Some(first)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                s.set_read_timeout(Some(idle)).unwrap();
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (out, true),
            Err(_) => return (out, false),
        }
    }
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace("\r\n", "\\r\\n")
}

/// The transcript of `chunks` must be the same on ferrocache and redis-server (when present);
/// returns ferrocache's.
fn same_transcript(f: &ServerProc, r: Option<&ServerProc>, chunks: &[&[u8]]) -> (Vec<u8>, bool) {
    let idle = Duration::from_millis(300);
    let a = transcript(f.port, chunks, idle);
    if let Some(r) = r {
        let b = transcript(r.port, chunks, idle);
        assert_eq!(
            (show(&a.0), a.1),
            (show(&b.0), b.1),
            "transcript differs (left ferrocache, right redis) for input {:?}",
            chunks.iter().map(|c| show(c)).collect::<Vec<_>>()
        );
    }
    a
}

/// Run the same command lines on one connection to each server and compare every raw reply.
fn same_replies(f: &ServerProc, r: Option<&ServerProc>, hello3: bool, cmds: &[Vec<&[u8]>]) {
    let run = |p: &ServerProc| -> Vec<String> {
        let mut c = p.conn();
        if hello3 {
            c.cmd(&["HELLO", "3"]);
        }
        cmds.iter()
            .map(|cmd| {
                c.send_cmd(cmd);
                show(&c.read_raw())
            })
            .collect()
    };
    let a = run(f);
    if let Some(r) = r {
        let b = run(r);
        for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
            assert_eq!(
                x,
                y,
                "reply #{} to {:?} (resp3={}) differs: left ferrocache, right redis",
                i,
                cmds[i].iter().map(|s| show(s)).collect::<Vec<_>>(),
                hello3
            );
        }
    }
}

fn redis_opt(extra: &[&str]) -> Option<ServerProc> {
    let r = common::redis_server(extra);
    if r.is_none() {
        eprintln!("SKIPPED (comparison part): redis-server is not on PATH");
    }
    r
}

fn info_field(c: &mut Raw, section: &str, field: &str) -> String {
    let r = c.cmd(&["INFO", section]);
    let text = r.as_str();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix(&format!("{}:", field)) {
            return v.trim().to_string();
        }
    }
    panic!("INFO {} has no field {}: {}", section, field, text);
}

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

// ---------------------------------------------------------------------------------------------
// transactions

#[test]
fn multi_exec_watch() {
    let f = common::ferrocache(&[]);
    let r = redis_opt(&[]);
    for p in std::iter::once(&f).chain(r.as_ref()) {
        let mut a = p.conn();
        let mut b = p.conn();
        // Broken by another connection's write.
        a.q("SET w 1");
        assert_eq!(a.q("WATCH w"), Reply::Simple("OK".into()));
        b.q("SET w 2");
        a.q("MULTI");
        assert_eq!(a.q("INCR w"), Reply::Simple("QUEUED".into()));
        assert_eq!(a.qraw("EXEC"), "*-1\r\n", "{}", p.name);
        // Not broken when nothing touched it.
        a.q("WATCH w");
        a.q("MULTI");
        a.q("INCR w");
        assert_eq!(a.q("EXEC"), Reply::Array(vec![Reply::Int(3)]));
        // Broken by expiry (Redis 7.0: a watched key that expires counts as modified).
        a.q("SET e 1 PX 50");
        a.q("WATCH e");
        std::thread::sleep(Duration::from_millis(120));
        a.q("MULTI");
        a.q("SET e 2");
        assert_eq!(a.qraw("EXEC"), "*-1\r\n", "{} expiry", p.name);
        // Broken by FLUSHALL and by SWAPDB from another connection.
        a.q("SET w 1");
        a.q("WATCH w");
        b.q("FLUSHALL");
        a.q("MULTI");
        a.q("PING");
        assert_eq!(a.qraw("EXEC"), "*-1\r\n", "{} flushall", p.name);
        // WATCH inside MULTI, EXECABORT, runtime errors do not abort.
        a.q("MULTI");
        assert_eq!(a.qraw("WATCH x"), "-ERR WATCH inside MULTI is not allowed\r\n");
        a.q("SET k v");
        assert_eq!(a.qraw("NOSUCH"), "-ERR unknown command 'NOSUCH', with args beginning with: \r\n");
        assert_eq!(a.qraw("EXEC"), "-EXECABORT Transaction discarded because of previous errors.\r\n");
        a.q("MULTI");
        a.q("SET k v");
        a.q("INCR k");
        a.q("GET k");
        assert_eq!(a.qraw("EXEC"), "*3\r\n+OK\r\n-ERR value is not an integer or out of range\r\n$1\r\nv\r\n");
        // SELECT inside MULTI applies to later queued commands.
        a.q("MULTI");
        a.q("SELECT 2");
        a.q("SET indb2 x");
        a.q("EXEC");
        assert_eq!(a.q("EXISTS indb2"), Reply::Int(1));
        a.q("SELECT 0");
    }
}

// ---------------------------------------------------------------------------------------------
// keyspace notifications

#[test]
fn keyspace_notifications_match_redis() {
    let f = common::ferrocache(&[]);
    let r = redis_opt(&[]);
    let mut results = Vec::new();
    for p in std::iter::once(&f).chain(r.as_ref()) {
        let mut c = p.conn();
        c.q("CONFIG SET notify-keyspace-events KEA");
        let mut s = p.conn();
        s.send_cmd(&["PSUBSCRIBE", "__key*__:*"]);
        s.read();
        let ops = [
            "SET k v",
            "APPEND k x",
            "SETRANGE k 0 y",
            "INCR n",
            "INCRBYFLOAT n 1.5",
            "EXPIRE k 100",
            "PERSIST k",
            "RENAME k k2",
            "DEL k2",
            "HSET h f v",
            "HINCRBY h c 1",
            "HDEL h f c",
            "SETBIT b 1 1",
            "BITOP OR b2 b",
            "GETDEL b2",
            "GETEX n EX 100",
            "COPY n n2",
            "MOVE n2 3",
            "SET x 1 PX 1",
            "MSET m1 1 m2 2",
            "FLUSHDB",
        ];
        for op in ops {
            c.q(op);
        }
        std::thread::sleep(Duration::from_millis(50));
        c.q("GET x"); // lazily expired: "expired" event
        c.q("PUBLISH end end");
        let mut events = Vec::new();
        s.set_timeout(Duration::from_millis(500));
        while let Ok(m) = s.try_read() {
            events.push(format!("{:?}", m));
        }
        results.push(events);
    }
    assert!(results[0].len() > 30, "too few notifications: {:?}", results[0]);
    if results.len() == 2 {
        assert_eq!(results[0], results[1], "left ferrocache, right redis");
    }
}

// ---------------------------------------------------------------------------------------------
// client-side caching

#[test]
fn client_tracking_modes() {
    let f = common::ferrocache(&[]);
    let r = redis_opt(&[]);
    for p in std::iter::once(&f).chain(r.as_ref()) {
        let name = p.name;
        // RESP3 default mode: push invalidation after a read then a write by someone else.
        let mut t = p.conn();
        t.cmd(&["HELLO", "3"]);
        assert_eq!(t.q("CLIENT TRACKING on"), Reply::Simple("OK".into()));
        t.q("GET k1");
        let mut w = p.conn();
        w.q("SET k1 v");
        assert_eq!(show(&t.read_raw()), ">2\\r\\n$10\\r\\ninvalidate\\r\\n*1\\r\\n$2\\r\\nk1\\r\\n", "{}", name);
        // Only once: not re-read, so no second invalidation.
        w.q("SET k1 v2");
        assert_eq!(t.q("PING"), Reply::Simple("PONG".into()), "{}", name);
        // FLUSHALL invalidates everything with a null.
        t.q("GET k1");
        w.q("FLUSHALL");
        assert_eq!(show(&t.read_raw()), ">2\\r\\n$10\\r\\ninvalidate\\r\\n_\\r\\n", "{}", name);
        // NOLOOP: own writes do not invalidate.
        t.q("CLIENT TRACKING off");
        t.q("CLIENT TRACKING on NOLOOP");
        t.q("GET k2");
        t.q("SET k2 x");
        assert_eq!(t.q("PING"), Reply::Simple("PONG".into()), "{}", name);
        // BCAST with prefixes.
        t.q("CLIENT TRACKING off");
        assert_eq!(t.q("CLIENT TRACKING on BCAST PREFIX user: PREFIX obj:"), Reply::Simple("OK".into()));
        w.q("SET user:1 a");
        assert_eq!(show(&t.read_raw()), ">2\\r\\n$10\\r\\ninvalidate\\r\\n*1\\r\\n$6\\r\\nuser:1\\r\\n", "{}", name);
        w.q("SET other 1");
        w.q("SET obj:9 1");
        assert_eq!(show(&t.read_raw()), ">2\\r\\n$10\\r\\ninvalidate\\r\\n*1\\r\\n$5\\r\\nobj:9\\r\\n", "{}", name);
        t.q("CLIENT TRACKING off");
        assert_eq!(
            t.qraw("CLIENT TRACKING on PREFIX x:"),
            "-ERR PREFIX option requires BCAST mode to be enabled\r\n",
            "{}",
            name
        );
        // OPTIN: only reads after CLIENT CACHING yes are tracked.
        t.q("CLIENT TRACKING on OPTIN");
        t.q("GET o1");
        assert_eq!(t.q("CLIENT CACHING yes"), Reply::Simple("OK".into()));
        t.q("GET o2");
        w.q("SET o1 x");
        w.q("SET o2 x");
        assert_eq!(show(&t.read_raw()), ">2\\r\\n$10\\r\\ninvalidate\\r\\n*1\\r\\n$2\\r\\no2\\r\\n", "{}", name);
        t.q("CLIENT TRACKING off");
        // OPTOUT: reads are tracked unless CLIENT CACHING no.
        t.q("CLIENT TRACKING on OPTOUT");
        t.q("CLIENT CACHING no");
        t.q("GET p1");
        t.q("GET p2");
        w.q("SET p1 x");
        w.q("SET p2 x");
        assert_eq!(show(&t.read_raw()), ">2\\r\\n$10\\r\\ninvalidate\\r\\n*1\\r\\n$2\\r\\np2\\r\\n", "{}", name);
        assert_eq!(
            t.qraw("CLIENT CACHING yes"),
            "-ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.\r\n",
            "{}",
            name
        );
        t.q("CLIENT TRACKING off");

        // RESP2 with REDIRECT to a client subscribed to __redis__:invalidate.
        let mut sub = p.conn();
        let Reply::Int(sub_id) = sub.q("CLIENT ID") else { panic!() };
        sub.send_cmd(&["SUBSCRIBE", "__redis__:invalidate"]);
        sub.read();
        let mut t2 = p.conn();
        assert_eq!(t2.cmd(&["CLIENT", "TRACKING", "on", "REDIRECT", &sub_id.to_string()]), Reply::Simple("OK".into()));
        assert_eq!(t2.q("CLIENT GETREDIR"), Reply::Int(sub_id));
        t2.q("GET r1");
        w.q("SET r1 x");
        assert_eq!(
            show(&sub.read_raw()),
            "*3\\r\\n$7\\r\\nmessage\\r\\n$20\\r\\n__redis__:invalidate\\r\\n*1\\r\\n$2\\r\\nr1\\r\\n",
            "{}",
            name
        );
        assert_eq!(
            t2.qraw("CLIENT TRACKING on REDIRECT 999999"),
            "-ERR The client ID you want redirect to does not exist\r\n",
            "{}",
            name
        );
        let info = t2.q("CLIENT TRACKINGINFO");
        assert!(format!("{:?}", info).contains("on"), "{:?}", info);
        // RESP2 tracking without redirect: rejected like Redis? (Redis allows it but the client
        // gets no invalidations in RESP2.) Just check it answers OK.
        let mut t3 = p.conn();
        assert_eq!(t3.q("CLIENT TRACKING on"), Reply::Simple("OK".into()), "{}", name);
    }
}

// ---------------------------------------------------------------------------------------------
// CLIENT KILL / PAUSE / REPLY / LIST

#[test]
fn client_kill_pause_reply() {
    let f = common::ferrocache(&[]);
    let r = redis_opt(&[]);
    for p in std::iter::once(&f).chain(r.as_ref()) {
        let name = p.name;
        let mut a = p.conn();
        let mut victim = p.conn();
        let Reply::Int(vid) = victim.q("CLIENT ID") else { panic!() };
        victim.q("CLIENT SETNAME victim");
        let list = a.q("CLIENT LIST").as_str();
        assert!(list.contains("name=victim"), "{}: {}", name, list);
        assert!(
            list.lines().all(|l| l.starts_with("id=") && l.contains(" addr=127.0.0.1:") && l.contains(" cmd=")),
            "{}: {}",
            name,
            list
        );
        assert_eq!(a.cmd(&["CLIENT", "KILL", "ID", &vid.to_string()]), Reply::Int(1));
        victim.set_timeout(Duration::from_secs(2));
        assert!(victim.closed(), "{}: killed client not closed", name);
        assert_eq!(a.cmd(&["CLIENT", "KILL", "ID", &vid.to_string()]), Reply::Int(0));
        assert_eq!(a.qraw("CLIENT KILL 1.2.3.4:5"), "-ERR No such client\r\n");
        // KILL by address (old form) and by USER/SKIPME.
        let mut v2 = p.conn();
        v2.q("PING");
        let addr = v2.w.local_addr().unwrap().to_string();
        assert_eq!(a.cmd(&["CLIENT", "KILL", &addr]), Reply::Simple("OK".into()));
        // PAUSE WRITE: reads go through, writes wait.
        assert_eq!(a.q("CLIENT PAUSE 300 WRITE"), Reply::Simple("OK".into()));
        let mut b = p.conn();
        let t0 = Instant::now();
        assert_eq!(b.q("GET x"), Reply::Nil);
        assert!(t0.elapsed() < Duration::from_millis(200), "{}: read blocked by PAUSE WRITE", name);
        b.q("SET x 1");
        assert!(t0.elapsed() >= Duration::from_millis(250), "{}: write not paused", name);
        a.q("CLIENT PAUSE 200 ALL");
        let t0 = Instant::now();
        b.q("GET x");
        assert!(t0.elapsed() >= Duration::from_millis(150), "{}: read not paused by PAUSE ALL", name);
        // (Under PAUSE ALL, Redis postpones CLIENT UNPAUSE too: unpause a WRITE pause.)
        a.q("CLIENT PAUSE 10000 WRITE");
        a.q("CLIENT UNPAUSE");
        let t0 = Instant::now();
        b.q("SET x 2");
        assert!(t0.elapsed() < Duration::from_millis(500), "{}: UNPAUSE", name);
        // REPLY OFF / SKIP / ON.
        let (out, _) = transcript(p.port, &[b"CLIENT REPLY OFF\r\nSET r 1\r\nGET r\r\nCLIENT REPLY ON\r\nGET r\r\nCLIENT REPLY SKIP\r\nGET r\r\nGET r\r\n"], Duration::from_millis(200));
        assert_eq!(show(&out), "+OK\\r\\n$1\\r\\n1\\r\\n$1\\r\\n1\\r\\n", "{}", name);
    }
}

// ---------------------------------------------------------------------------------------------
// CONFIG GET / SET / REWRITE with a config file

#[test]
fn config_get_set_rewrite() {
    let dir = common::temp_dir("conf");
    let conf = dir.join("ferrocache.conf");
    std::fs::write(
        &conf,
        "# test config\nmaxmemory 5mb\nhz 20\nmaxmemory-policy allkeys-lru\nnotify-keyspace-events \"\"\n",
    )
    .unwrap();
    {
        let f = common::ferrocache_with(Some(&conf), &["--dir", dir.to_str().unwrap()]);
        let mut c = f.conn();
        assert_eq!(
            c.q("CONFIG GET maxmemory"),
            Reply::Array(vec![Reply::Bulk(b"maxmemory".to_vec()), Reply::Bulk(b"5242880".to_vec())])
        );
        assert_eq!(c.q("CONFIG GET hz"), Reply::Array(vec![Reply::Bulk(b"hz".to_vec()), Reply::Bulk(b"20".to_vec())]));
        assert_eq!(c.q("CONFIG SET maxmemory 10mb hz 15"), Reply::Simple("OK".into()));
        assert_eq!(c.qraw("CONFIG SET hz 0"), "-ERR CONFIG SET failed (possibly related to argument 'hz') - argument must be between 1 and 500 inclusive\r\n");
        assert_eq!(
            c.qraw("CONFIG SET databases 4"),
            "-ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config\r\n"
        );
        assert_eq!(
            c.qraw("CONFIG SET hz 5 hz 6"),
            "-ERR CONFIG SET failed (possibly related to argument 'hz') - duplicate parameter\r\n"
        );
        assert_eq!(c.q("CONFIG REWRITE"), Reply::Simple("OK".into()));
        let text = std::fs::read_to_string(&conf).unwrap();
        assert!(text.contains("# test config"), "comments kept: {}", text);
        assert!(text.lines().any(|l| l == "maxmemory 10mb"), "{}", text);
        assert!(text.lines().any(|l| l == "hz 15"), "{}", text);
        assert_eq!(c.q("CONFIG RESETSTAT"), Reply::Simple("OK".into()));
    }
    // Restart from the rewritten file: the values persisted.
    let f = common::ferrocache_with(Some(&conf), &[]);
    let mut c = f.conn();
    assert_eq!(
        c.q("CONFIG GET maxmemory"),
        Reply::Array(vec![Reply::Bulk(b"maxmemory".to_vec()), Reply::Bulk(b"10485760".to_vec())])
    );
    assert_eq!(c.q("CONFIG GET hz"), Reply::Array(vec![Reply::Bulk(b"hz".to_vec()), Reply::Bulk(b"15".to_vec())]));
    drop(f);
    let _ = std::fs::remove_dir_all(&dir);
    // Without a config file, REWRITE fails like Redis.
    let f = common::ferrocache(&[]);
    assert_eq!(f.conn().qraw("CONFIG REWRITE"), "-ERR The server is running without a config file\r\n");
}

// ---------------------------------------------------------------------------------------------
// maxmemory: the 8 policies and the OOM error

fn used_memory(c: &mut Raw) -> u64 {
    info_field(c, "memory", "used_memory").parse().unwrap()
}

#[test]
fn maxmemory_policies_and_oom() {
    let policies = [
        "noeviction",
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ];
    let f = common::ferrocache(&[]);
    let mut c = f.conn();
    let value = "x".repeat(1000);
    for policy in policies {
        c.q("FLUSHALL");
        c.q("CONFIG SET maxmemory 0");
        let base = used_memory(&mut c);
        let limit = base + 2 * 1024 * 1024;
        c.cmd(&["CONFIG", "SET", "maxmemory-policy", policy]);
        c.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
        let volatile = policy.starts_with("volatile");
        // Half the keys have a TTL (for the volatile policies), the rest not.
        let mut oom = None;
        for i in 0..6000 {
            let k = format!("key:{}", i);
            let r = if i % 2 == 0 {
                c.cmd(&["SET", &k, &value, "EX", &(10000 + i).to_string()])
            } else {
                c.cmd(&["SET", &k, &value])
            };
            if let Reply::Error(e) = r {
                oom = Some((i, e));
                break;
            }
        }
        let used = used_memory(&mut c);
        let dbsize = c.q("DBSIZE").as_int();
        match policy {
            "noeviction" => {
                let (_, e) = oom.expect("noeviction must refuse writes past maxmemory");
                assert_eq!(e, "OOM command not allowed when used memory > 'maxmemory'.");
                // Reads still work, DEL too.
                assert!(!c.q("GET key:1").is_error());
                assert!(!c.q("DEL key:1").is_error());
            }
            p if volatile => {
                // Volatile policies evict only keys with a TTL: when they run out, OOM.
                let persistent = (0..6000)
                    .step_by(2)
                    .map(|i| i + 1)
                    .filter(|i| matches!(c.cmd(&["EXISTS", &format!("key:{}", i)]), Reply::Int(1)))
                    .count();
                let (_, e) = oom.unwrap_or_else(|| panic!("{}: must refuse writes once no volatile key is left", p));
                assert_eq!(e, "OOM command not allowed when used memory > 'maxmemory'.");
                assert!(persistent > 0, "{}: persistent keys were evicted", p);
                let volatile_left = (0..6000)
                    .step_by(2)
                    .filter(|i| matches!(c.cmd(&["EXISTS", &format!("key:{}", i)]), Reply::Int(1)))
                    .count();
                assert!(volatile_left < 3000, "{}: nothing evicted", p);
            }
            p => {
                assert!(oom.is_none(), "{}: allkeys policies never refuse: {:?}", p, oom);
                assert!(dbsize < 6000, "{}: nothing evicted (dbsize {})", p, dbsize);
                assert!(used <= limit + 256 * 1024, "{}: used_memory {} above maxmemory {}", p, used, limit);
                let evicted: u64 = info_field(&mut c, "stats", "evicted_keys").parse().unwrap();
                assert!(evicted > 0, "{}: evicted_keys", p);
            }
        }
    }
    c.q("CONFIG SET maxmemory 0");
}

// ---------------------------------------------------------------------------------------------
// INFO, SLOWLOG, DUMP/RESTORE

#[test]
fn info_fields() {
    let f = common::ferrocache(&[]);
    let mut c = f.conn();
    c.q("SET a 1");
    c.q("SET b 2 EX 100");
    let all = c.q("INFO").as_str();
    for section in
        ["# Server", "# Clients", "# Memory", "# Persistence", "# Stats", "# Replication", "# CPU", "# Keyspace"]
    {
        assert!(all.contains(section), "INFO lacks {}", section);
    }
    for field in [
        "redis_version:7.0.15",
        "redis_mode:standalone",
        "tcp_port:",
        "uptime_in_seconds:",
        "connected_clients:",
        "used_memory:",
        "used_memory_human:",
        "maxmemory_policy:noeviction",
        "total_commands_processed:",
        "keyspace_hits:",
        "keyspace_misses:",
        "role:master",
        "db0:keys=2,expires=1,avg_ttl=",
    ] {
        assert!(all.contains(field), "INFO lacks {}: {}", field, all);
    }
    assert_eq!(info_field(&mut c, "server", "tcp_port"), f.port.to_string());
    let cs = c.q("INFO commandstats").as_str();
    assert!(cs.contains("cmdstat_set:calls=2,usec="), "{}", cs);
    assert!(
        c.q("INFO nosuchsection").as_str().is_empty()
            || c.q("INFO nosuchsection").as_str() == "\r\n"
            || !c.q("INFO nosuchsection").is_error()
    );
}

#[test]
fn slowlog() {
    let f = common::ferrocache(&[]);
    let r = redis_opt(&[]);
    let mut results = Vec::new();
    for p in std::iter::once(&f).chain(r.as_ref()) {
        let mut c = p.conn();
        let mut log = Vec::new();
        c.q("CONFIG SET slowlog-log-slower-than 0");
        c.q("SLOWLOG RESET");
        c.q("SET a 1");
        c.cmd(&["CLIENT", "SETNAME", "slowpoke"]);
        c.q("GET a");
        log.push(format!("{:?}", c.q("SLOWLOG LEN")));
        let Reply::Array(entries) = c.q("SLOWLOG GET 3") else { panic!() };
        assert_eq!(entries.len(), 3);
        for e in &entries {
            let e = e.items();
            assert_eq!(e.len(), 6, "{}", p.name);
            assert!(matches!(e[0], Reply::Int(_)) && matches!(e[1], Reply::Int(_)) && matches!(e[2], Reply::Int(_)));
            assert!(e[4].as_str().starts_with("127.0.0.1:"));
            // args and client name are deterministic
            log.push(format!("{:?} {:?}", e[3], e[5]));
        }
        c.q("CONFIG SET slowlog-max-len 2");
        c.q("PING");
        log.push(format!("{:?}", c.q("SLOWLOG LEN")));
        c.q("CONFIG SET slowlog-log-slower-than -1");
        c.q("SLOWLOG RESET");
        c.q("PING");
        log.push(format!("{:?}", c.q("SLOWLOG LEN")));
        log.push(c.qraw("SLOWLOG GET x"));
        results.push(log);
    }
    assert!(results[0][1].contains("\"SLOWLOG\", \"LEN\"") || results[0][1].contains("LEN"), "{:?}", results[0]);
    if results.len() == 2 {
        assert_eq!(results[0], results[1], "left ferrocache, right redis");
    }
}

#[test]
fn dump_restore_between_servers() {
    let f = common::ferrocache(&[]);
    let r = redis_opt(&[]);
    let mut a = f.conn();
    a.q("SET s hello");
    a.q("SET i 12345");
    a.q("HSET h f1 v1 f2 v2");
    let Reply::Bulk(ds) = a.q("DUMP s") else { panic!() };
    assert_eq!(a.cmd(&[b"RESTORE".as_slice(), b"s2", b"0", &ds]), Reply::Simple("OK".into()));
    assert_eq!(
        a.cmd(&[b"RESTORE".as_slice(), b"s2", b"0", &ds]),
        Reply::Error("BUSYKEY Target key name already exists.".into())
    );
    assert_eq!(a.cmd(&[b"RESTORE".as_slice(), b"s2", b"5000", &ds, b"REPLACE"]), Reply::Simple("OK".into()));
    assert!(matches!(a.q("PTTL s2"), Reply::Int(t) if t > 4000 && t <= 5000));
    assert_eq!(a.cmd(&[b"RESTORE".as_slice(), b"s3", b"1", &ds, b"ABSTTL"]), Reply::Simple("OK".into()));
    assert_eq!(a.q("EXISTS s3"), Reply::Int(0));
    assert_eq!(
        a.cmd(&[b"RESTORE".as_slice(), b"s4", b"0", b"garbage"]),
        Reply::Error("ERR DUMP payload version or checksum are wrong".into())
    );
    assert_eq!(
        a.cmd(&[b"RESTORE".as_slice(), b"s4", b"-1", &ds]),
        Reply::Error("ERR Invalid TTL value, must be >= 0".into())
    );
    assert_eq!(a.cmd(&[b"RESTORE".as_slice(), b"s4", b"0", &ds, b"IDLETIME", b"100"]), Reply::Simple("OK".into()));
    assert!(matches!(a.q("OBJECT IDLETIME s4"), Reply::Int(t) if t >= 100));
    if let Some(r) = r {
        let mut b = r.conn();
        for k in ["s", "i", "h"] {
            // ferrocache -> redis -> ferrocache, and the payloads are byte-identical.
            let Reply::Bulk(p1) = a.cmd(&["DUMP", k]) else { panic!() };
            assert_eq!(
                b.cmd(&[b"RESTORE".as_slice(), k.as_bytes(), b"0", &p1]),
                Reply::Simple("OK".into()),
                "redis refused ferrocache's DUMP of {}",
                k
            );
            let Reply::Bulk(p2) = b.cmd(&["DUMP", k]) else { panic!() };
            assert_eq!(p1, p2, "DUMP {} differs", k);
            a.cmd(&["DEL", k]);
            assert_eq!(a.cmd(&[b"RESTORE".as_slice(), k.as_bytes(), b"0", &p2]), Reply::Simple("OK".into()));
        }
        assert_eq!(a.q("HGETALL h"), b.q("HGETALL h"));
    }
}

// ---------------------------------------------------------------------------------------------
// redis-cli against ferrocache

#[test]
fn redis_cli_works() {
    let Some(cli) = common::which("redis-cli") else {
        eprintln!("SKIPPED: redis-cli is not on PATH");
        return;
    };
    let f = common::ferrocache(&[]);
    let r = redis_opt(&[]);
    let run = |port: u16, args: &[&str]| -> String {
        let out = std::process::Command::new(&cli).arg("-p").arg(port.to_string()).args(args).output().unwrap();
        assert!(out.status.success(), "redis-cli {:?} failed: {}", args, String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let cmds: &[&[&str]] = &[
        &["set", "a", "hello world"],
        &["get", "a"],
        &["--no-raw", "get", "a"],
        &["hset", "h", "f", "v", "g", "w"],
        &["hgetall", "h"],
        &["--no-raw", "hgetall", "h"],
        &["--no-raw", "incrbyfloat", "fl", "1.5"],
        &["--no-raw", "get", "nosuch"],
        &["--no-raw", "nosuchcommand"],
        &["--no-raw", "mget", "a", "nosuch"],
        &["ping"],
        &["-3", "--no-raw", "hgetall", "h"],
        &["-3", "--no-raw", "get", "nosuch"],
        &["--no-raw", "exists", "a"],
        &["del", "a", "h", "fl"],
    ];
    for c in cmds {
        let x = run(f.port, c);
        if let Some(r) = &r {
            assert_eq!(x, run(r.port, c), "redis-cli {:?}", c);
        }
    }
    assert_eq!(run(f.port, &["--no-raw", "set", "k", "v"]), "OK\n");
    assert_eq!(run(f.port, &["--no-raw", "get", "k"]), "\"v\"\n");
    // Piped commands.
    let mut child = std::process::Command::new(&cli)
        .arg("-p")
        .arg(f.port.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"SET p 1\nINCR p\nGET p\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "OK\n2\n2\n");
}

/// Commands a non-cluster redis-server 7.0 answers with fixed errors or texts (cluster mode,
/// modules, LOLWUT): the same bytes here. DEBUG is compared with it enabled on both sides.
#[test]
fn cluster_module_lolwut_debug_as_redis() {
    let f = common::ferrocache(&["--enable-debug-command", "yes"]);
    let Some(r) = redis_opt(&["--enable-debug-command", "yes"]) else {
        println!("redis-server not on PATH: skipping");
        return;
    };
    let lines = [
        "CLUSTER INFO",
        "CLUSTER KEYSLOT x",
        "CLUSTER NOSUCH",
        "CLUSTER",
        "READONLY",
        "READWRITE",
        "ASKING",
        "MODULE LIST",
        "MODULE LOAD /nonexistent.so",
        "MODULE NOSUCH",
        "LOLWUT",
        "LOLWUT VERSION x",
        "DEBUG ERROR LOADING",
        "DEBUG ERROR",
        "DEBUG NOSUCH",
        "COMMAND LIST FILTERBY PATTERN cluster|slo*",
    ];
    let (mut a, mut b) = (f.conn(), r.conn());
    for l in lines {
        assert_eq!(a.qraw(l), b.qraw(l), "{l}");
    }
    a.q("HELLO 3");
    b.q("HELLO 3");
    assert_eq!(a.qraw("LOLWUT"), b.qraw("LOLWUT"));
}

/// MONITOR shows EVAL/FCALL first, then the script's commands from client "lua", as Redis does.
#[test]
fn monitor_shows_script_commands_as_lua() {
    let f = common::ferrocache(&[]);
    let r = redis_opt(&[]);
    let mut transcripts = Vec::new();
    for p in std::iter::once(&f).chain(r.as_ref()) {
        let mut m = p.conn();
        assert_eq!(m.qraw("MONITOR"), "+OK\r\n");
        let mut c = p.conn();
        c.q("EVAL redis.call('set','foo','bar');return(redis.call('get','foo')) 0");
        c.q("SET plain 1");
        let mut lines = Vec::new();
        for _ in 0..4 {
            let l = m.read_str();
            // +<time> [<db> <client>] <args>: keep what does not vary between runs.
            let (_, rest) = l.split_once(' ').unwrap();
            let client_kind = if rest.starts_with("[0 lua]") { "lua" } else { "client" };
            lines.push(format!("{client_kind} {}", &rest[rest.find(']').unwrap() + 1..]));
        }
        transcripts.push(lines);
    }
    assert_eq!(transcripts[0][1], "lua  \"set\" \"foo\" \"bar\"\r\n");
    if transcripts.len() == 2 {
        assert_eq!(transcripts[0], transcripts[1]);
    }
}
