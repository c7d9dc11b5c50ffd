//! A few commands of each command family, sent as raw RESP bytes to a node running inside the
//! test process (tests/common/inproc.rs), with the exact reply bytes Redis 7.0 sends; and the
//! harness itself: nodes of one process are separate, know their port, and close it when dropped.

mod common;
#[path = "common/inproc.rs"]
mod inproc;

use common::Raw;
use inproc::InProcNode;
use std::time::Duration;

/// Send each request (raw RESP bytes) and check its reply, byte for byte.
fn exchange(port: u16, script: &[(&str, &str)]) {
    let mut c = Raw::connect(port);
    for (req, want) in script {
        c.send(req.as_bytes());
        let got = c.read_str();
        assert_eq!(got, *want, "reply to {req:?}");
    }
}

/// `exchange` with requests given as command lines (split on spaces).
fn commands(port: u16, script: &[(&str, &str)]) {
    let encoded: Vec<(String, &str)> = script
        .iter()
        .map(|(line, want)| {
            let args: Vec<&str> = line.split(' ').collect();
            (String::from_utf8(common::encode(&args)).unwrap(), *want)
        })
        .collect();
    let borrowed: Vec<(&str, &str)> = encoded.iter().map(|(r, w)| (r.as_str(), *w)).collect();
    exchange(port, &borrowed);
}

#[test]
fn strings_keys_and_bits() {
    let n = InProcNode::start(&[]);
    exchange(
        n.port,
        &[
            ("*1\r\n$4\r\nPING\r\n", "+PONG\r\n"),
            ("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", "+OK\r\n"),
            ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "$1\r\nv\r\n"),
            ("*2\r\n$3\r\nGET\r\n$6\r\nnosuch\r\n", "$-1\r\n"),
            // Inline commands too.
            ("APPEND k xyz\r\n", ":4\r\n"),
            ("GETRANGE k 1 2\r\n", "$2\r\nxy\r\n"),
        ],
    );
    commands(
        n.port,
        &[
            ("INCR n", ":1\r\n"),
            ("INCRBY n 41", ":42\r\n"),
            ("INCR k", "-ERR value is not an integer or out of range\r\n"),
            ("MSET a 1 b 2", "+OK\r\n"),
            ("MGET a nosuch b", "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n"),
            ("EXISTS k n nosuch", ":2\r\n"),
            ("TYPE k", "+string\r\n"),
            ("EXPIRE k 100", ":1\r\n"),
            ("TTL k", ":100\r\n"),
            ("PERSIST k", ":1\r\n"),
            ("TTL k", ":-1\r\n"),
            ("RENAME a c", "+OK\r\n"),
            ("DEL k n c nosuch", ":3\r\n"),
            ("SETBIT bits 7 1", ":0\r\n"),
            ("GETBIT bits 7", ":1\r\n"),
            ("BITCOUNT bits", ":1\r\n"),
            ("GET bits", "$1\r\n\u{1}\r\n"),
            ("NOSUCH a", "-ERR unknown command 'NOSUCH', with args beginning with: 'a' \r\n"),
            ("GET", "-ERR wrong number of arguments for 'get' command\r\n"),
        ],
    );
}

#[test]
fn hashes_lists_and_sets() {
    let n = InProcNode::start(&[]);
    commands(
        n.port,
        &[
            ("HSET h f1 a f2 b", ":2\r\n"),
            ("HGET h f1", "$1\r\na\r\n"),
            ("HMGET h f2 nosuch", "*2\r\n$1\r\nb\r\n$-1\r\n"),
            ("HINCRBY h n 5", ":5\r\n"),
            ("HLEN h", ":3\r\n"),
            ("HDEL h f1 f2", ":2\r\n"),
            ("HGETALL h", "*2\r\n$1\r\nn\r\n$1\r\n5\r\n"),
            ("RPUSH l a b c", ":3\r\n"),
            ("LPUSH l z", ":4\r\n"),
            ("LRANGE l 0 -1", "*4\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"),
            ("LPOP l", "$1\r\nz\r\n"),
            ("LLEN l", ":3\r\n"),
            ("LPUSH h x", "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"),
            ("SADD s x y x", ":2\r\n"),
            ("SISMEMBER s x", ":1\r\n"),
            ("SMISMEMBER s x q", "*2\r\n:1\r\n:0\r\n"),
            ("SCARD s", ":2\r\n"),
            ("SREM s x", ":1\r\n"),
            ("SMEMBERS s", "*1\r\n$1\r\ny\r\n"),
        ],
    );
}

#[test]
fn zsets_streams_and_hyperloglog() {
    let n = InProcNode::start(&[]);
    commands(
        n.port,
        &[
            ("ZADD z 1 a 2 b", ":2\r\n"),
            ("ZRANGE z 0 -1 WITHSCORES", "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"),
            ("ZSCORE z b", "$1\r\n2\r\n"),
            ("ZINCRBY z 1.5 a", "$3\r\n2.5\r\n"),
            ("ZRANK z a", ":1\r\n"),
            ("ZCARD z", ":2\r\n"),
            ("XADD x 1-1 f v", "$3\r\n1-1\r\n"),
            ("XADD x 1-1 f v", "-ERR The ID specified in XADD is equal or smaller than the target stream top item\r\n"),
            ("XLEN x", ":1\r\n"),
            ("XRANGE x - +", "*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"),
            ("PFADD p a b c", ":1\r\n"),
            ("PFADD p a", ":0\r\n"),
            ("PFCOUNT p", ":3\r\n"),
        ],
    );
}

#[test]
fn transactions_pipelining_and_resp3() {
    let n = InProcNode::start(&[]);
    commands(
        n.port,
        &[("MULTI", "+OK\r\n"), ("INCR n", "+QUEUED\r\n"), ("SADD s a", "+QUEUED\r\n"), ("EXEC", "*2\r\n:1\r\n:1\r\n")],
    );
    // Three requests in one write: three replies, in order.
    let mut c = Raw::connect(n.port);
    c.send(b"*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n*2\r\n$3\r\nGET\r\n$1\r\nn\r\n");
    assert_eq!([c.read_str(), c.read_str(), c.read_str()], [":2\r\n", ":3\r\n", "$1\r\n3\r\n"]);
    // RESP3: maps, sets, doubles and nulls.
    c.send_cmd(&["HELLO", "3"]);
    assert!(c.read_str().starts_with("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"));
    commands(n.port, &[("ZADD z 2.5 m", ":1\r\n"), ("HSET h f v", ":1\r\n")]);
    for (cmd, want) in [
        (&["ZSCORE", "z", "m"][..], ",2.5\r\n"),
        (&["HGETALL", "h"], "%1\r\n$1\r\nf\r\n$1\r\nv\r\n"),
        (&["SMEMBERS", "s"], "~1\r\n$1\r\na\r\n"),
        (&["GET", "nosuch"], "_\r\n"),
    ] {
        c.send_cmd(cmd);
        assert_eq!(c.read_str(), want, "{cmd:?}");
    }
}

/// Two nodes of one process share nothing a client sees; each knows the port it was given.
#[test]
fn two_nodes_in_one_process_are_separate() {
    let a = InProcNode::start(&[]);
    let b = InProcNode::start(&[("notify-keyspace-events", "KEA")]);
    assert_ne!(a.port, b.port);
    commands(a.port, &[("SET k a", "+OK\r\n")]);
    commands(b.port, &[("GET k", "$-1\r\n"), ("SET k b", "+OK\r\n")]);
    commands(a.port, &[("GET k", "$1\r\na\r\n")]);
    let port = |p: u16| format!("*2\r\n$4\r\nport\r\n${}\r\n{}\r\n", p.to_string().len(), p);
    commands(
        a.port,
        &[
            ("CONFIG GET port", &port(a.port)),
            ("CONFIG GET notify-keyspace-events", "*2\r\n$22\r\nnotify-keyspace-events\r\n$0\r\n\r\n"),
        ],
    );
    commands(
        b.port,
        &[
            ("CONFIG GET port", &port(b.port)),
            ("CONFIG GET notify-keyspace-events", "*2\r\n$22\r\nnotify-keyspace-events\r\n$3\r\nAKE\r\n"),
        ],
    );
    assert_eq!(b.node.config().get_i64("port"), b.port as i64);
}

/// Dropping the handle stops the node: its connections are closed and its port refuses new ones.
#[test]
fn dropping_the_node_closes_its_port() {
    let n = InProcNode::start(&[]);
    let port = n.port;
    let mut c = Raw::connect(port);
    assert_eq!(c.cmd(&["PING"]), common::Reply::Simple("PONG".into()));
    drop(n);
    c.set_timeout(Duration::from_secs(5));
    assert!(c.closed(), "the connection outlived its node");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "port {port} still accepts");
}
