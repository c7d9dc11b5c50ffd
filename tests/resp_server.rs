//! End-to-end tests of server-side commands against a ferrocache process, compared with a real
//! redis-server where it is installed (SKIPPED otherwise): CONFIG GET / SET / REWRITE with a
//! config file, the maxmemory policies and the OOM error, INFO fields, SLOWLOG, DUMP/RESTORE
//! between servers, redis-cli against ferrocache, CLUSTER / MODULE / LOLWUT / DEBUG replies,
//! MONITOR. Helpers: tests/common/resp.rs.

mod common;
#[path = "common/resp.rs"]
mod resp;

use common::{Raw, Reply};
use resp::*;
use std::io::Write;

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
