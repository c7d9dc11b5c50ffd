//! Helpers of the replication end-to-end tests (tests/replication*.rs): nodes started with
//! their own --dir and log file (common::node), waited for until they listen (a replica may
//! still be loading its primary's dataset), datasets of every type and their snapshots, link
//! and role checks. Included with `#[path = "common/repl.rs"] mod repl;` (next to `mod common;`).
#![allow(dead_code)]

use crate::common::node::{self, info_field, q, Node};
use crate::common::wait_listening;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `ferrocache server --port P --dir DIR EXTRA...` logging to DIR/ferrocache-P.log, once its
/// port accepts connections.
pub fn start(dir: &Path, extra: &[&str]) -> Node {
    let mut n = node::spawn(dir, dir, extra);
    wait_listening(n.port, n.child.as_mut().unwrap());
    n
}

/// redis-server on DIR loading DIR/DBFILENAME (`--save "" --appendonly no
/// --repl-diskless-sync-delay 0`), None when it is not installed.
pub fn start_redis(dir: &Path, dbfilename: &str) -> Option<Node> {
    node::start_redis(
        dir,
        &["--dbfilename", dbfilename, "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0"],
    )
}

/// A fresh directory for a test's nodes.
pub fn tempdir(name: &str) -> std::path::PathBuf {
    node::tempdir("repl", name)
}

pub fn link_up(c: &mut redis::Connection) -> bool {
    info_field(c, "replication", "master_link_status") == "up"
}

/// Every key of every database with its DUMP-independent content (type + sorted content + TTL>0).
pub fn snapshot(c: &mut redis::Connection) -> Vec<(i64, String, String, bool)> {
    let mut all = Vec::new();
    for db in 0..16 {
        let _: () = q(c, &["SELECT", &db.to_string()]);
        let mut keys: Vec<String> = q(c, &["KEYS", "*"]);
        keys.sort();
        for k in keys {
            let t: String = q(c, &["TYPE", &k]);
            let v = match t.as_str() {
                "string" => q::<String>(c, &["GET", &k]),
                "hash" => {
                    let mut v: Vec<String> = q(c, &["HGETALL", &k]);
                    v.sort();
                    v.join(",")
                }
                "list" => q::<Vec<String>>(c, &["LRANGE", &k, "0", "-1"]).join(","),
                "set" => {
                    let mut v: Vec<String> = q(c, &["SMEMBERS", &k]);
                    v.sort();
                    v.join(",")
                }
                "zset" => q::<Vec<String>>(c, &["ZRANGE", &k, "0", "-1", "WITHSCORES"]).join(","),
                "stream" => format!("{:?}", q::<redis::Value>(c, &["XRANGE", &k, "-", "+"])),
                other => other.to_string(),
            };
            let ttl: i64 = q(c, &["PTTL", &k]);
            all.push((db, k, v, ttl > 0));
        }
    }
    let _: () = q(c, &["SELECT", "0"]);
    all
}

pub fn fill_every_type(c: &mut redis::Connection, tag: &str) {
    let _: () = q(c, &["SET", &format!("s:{tag}"), "v"]);
    let _: () = q(c, &["SET", &format!("ttl:{tag}"), "v", "EX", "1000"]);
    let _: i64 = q(c, &["HSET", &format!("h:{tag}"), "a", "1", "b", "2"]);
    let _: i64 = q(c, &["RPUSH", &format!("l:{tag}"), "x", "y", "z"]);
    let _: i64 = q(c, &["SADD", &format!("set:{tag}"), "1", "2", "3"]);
    let _: i64 = q(c, &["ZADD", &format!("z:{tag}"), "1", "a", "2.5", "b"]);
    let _: String = q(c, &["XADD", &format!("x:{tag}"), "*", "f", "v"]);
    let _: i64 = q(c, &["INCRBY", &format!("n:{tag}"), "5"]);
    let _: () = q(c, &["SELECT", "7"]);
    let _: () = q(c, &["SET", &format!("db7:{tag}"), "seven"]);
    let _: () = q(c, &["SELECT", "0"]);
}

/// The exact error line (without '-') a command gets on a fresh connection to `n`.
pub fn q_err(n: &Node, args: &[&str]) -> String {
    match crate::common::Raw::connect(n.port).cmd(args) {
        crate::common::Reply::Error(e) => e,
        v => panic!("expected an error from {args:?}, got {v:?}"),
    }
}

/// GET for polling loops: None also while the node answers -LOADING (a replica loading a sync).
pub fn get_opt(c: &mut redis::Connection, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query::<Option<String>>(c).ok().flatten()
}

pub fn role_name(c: &mut redis::Connection) -> String {
    info_field(c, "replication", "role")
}

pub fn signal(n: &Node, sig: &str) {
    let pid = n.child.as_ref().unwrap().id().to_string();
    let st = Command::new("kill").args([sig, &pid]).status().unwrap();
    assert!(st.success());
}

pub fn offset_of(c: &mut redis::Connection, field: &str) -> u64 {
    info_field(c, "replication", field).parse().unwrap()
}

/// One memcached text exchange: send `req`, read until a line equal to `end`.
pub fn mc_text(port: u16, req: &str, end: &str) -> String {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut b = [0u8; 4096];
    while !out.ends_with(format!("{end}\r\n").as_bytes()) {
        let n = s.read(&mut b).unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&b[..n]);
    }
    String::from_utf8(out).unwrap()
}
