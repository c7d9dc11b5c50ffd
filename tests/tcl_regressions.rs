//! Behaviours found missing by Redis 7.0.15's own TCL suite (tests/tcl/run.sh), each checked
//! over sockets against the real binary: hangs first (a client waiting for a reply or a wakeup
//! that never comes), then Redis's observable ordering and texts.

mod common;

use common::{Raw, Reply};
use std::time::{Duration, Instant};

fn bulk(s: &str) -> Reply {
    Reply::Bulk(s.as_bytes().to_vec())
}

/// Wait until INFO reports `n` blocked clients (the TCL suite's wait_for_blocked_clients_count).
fn wait_blocked(c: &mut Raw, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info = c.q("INFO clients").as_str();
        if info.contains(&format!("blocked_clients:{}\r\n", n)) {
            return;
        }
        assert!(Instant::now() < deadline, "never saw {} blocked clients: {}", n, info);
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn swapdb_and_rename_wake_blocked_clients() {
    let s = common::ferrocache(&[]);
    let mut r = s.conn();
    let mut rd = s.conn();
    // SWAPDB awakes blocked client (type/list.tcl).
    r.q("SELECT 1");
    r.q("RPUSH k hello");
    r.q("SELECT 9");
    rd.q("SELECT 9");
    rd.send_cmd(&["BRPOP", "k", "5"]);
    wait_blocked(&mut r, 1);
    assert_eq!(r.q("SWAPDB 1 9"), Reply::Simple("OK".into()));
    assert_eq!(rd.read(), Reply::Array(vec![bulk("k"), bulk("hello")]));
    // BLPOP when new key is moved into place (RENAME).
    rd.send_cmd(&["BLPOP", "foo", "0"]);
    wait_blocked(&mut r, 1);
    r.q("LPUSH bob abc def hij");
    r.q("RENAME bob foo");
    assert_eq!(rd.read(), Reply::Array(vec![bulk("foo"), bulk("hij")]));
}

#[test]
fn xreadgroup_is_answered_when_its_stream_goes_away() {
    let s = common::ferrocache(&[]);
    let mut r = s.conn();
    for change in ["SET mystream val1", "FLUSHALL"] {
        r.q("DEL mystream");
        r.q("XADD mystream 666 f v");
        r.q("XGROUP CREATE mystream mygroup $");
        let mut rd = s.conn();
        rd.send_cmd(&["XREADGROUP", "GROUP", "mygroup", "Alice", "BLOCK", "0", "STREAMS", "mystream", ">"]);
        wait_blocked(&mut r, 1);
        r.q(change);
        let reply = rd.read();
        assert!(reply.as_str().contains("no longer exists"), "{}: {:?}", change, reply);
    }
}

#[test]
fn subscribe_confirmations_pass_client_reply_off() {
    let s = common::ferrocache(&[]);
    let mut rd = s.conn();
    rd.q("HELLO 3");
    rd.send_cmd(&["CLIENT", "REPLY", "OFF"]);
    let r = rd.q("SUBSCRIBE channel");
    assert_eq!(r, Reply::Push(vec![bulk("subscribe"), bulk("channel"), Reply::Int(1)]));
    let mut p = s.conn();
    assert_eq!(p.q("PUBLISH channel hello"), Reply::Int(1));
    assert_eq!(rd.read(), Reply::Push(vec![bulk("message"), bulk("channel"), bulk("hello")]));
}

#[test]
fn transactions_as_redis() {
    let s = common::ferrocache(&[]);
    let mut r = s.conn();
    // RESET clears and discards MULTI state (other.tcl).
    r.q("MULTI");
    r.q("SET key-a a");
    assert_eq!(r.q("RESET"), Reply::Simple("RESET".into()));
    assert_eq!(r.q("EXEC"), Reply::Error("ERR EXEC without MULTI".into()));
    assert_eq!(r.q("EXISTS key-a"), Reply::Int(0));
    // FLUSHALL / FLUSHDB touch only watched keys that existed (multi.tcl).
    for flush in ["FLUSHALL", "FLUSHDB"] {
        r.q("DEL x");
        r.q("WATCH x");
        r.q(flush);
        r.q("MULTI");
        r.q("PING");
        assert_eq!(r.q("EXEC"), Reply::Array(vec![Reply::Simple("PONG".into())]), "{} missing key", flush);
        r.q("SET x 30");
        r.q("WATCH x");
        r.q(flush);
        r.q("MULTI");
        r.q("PING");
        assert_eq!(r.q("EXEC"), Reply::NilArray, "{} existing key", flush);
    }
    // EXEC with a use-memory command under OOM is aborted, and the transaction is gone.
    let mut r2 = s.conn();
    r.q("MULTI");
    r.q("SET x 1");
    r2.q("CONFIG SET maxmemory 1");
    let e = r.q("EXEC").as_str();
    assert!(e.starts_with("EXECABORT Transaction discarded because of: OOM"), "{}", e);
    r2.q("CONFIG SET maxmemory 0");
    assert_eq!(r.q("EXEC"), Reply::Error("ERR EXEC without MULTI".into()));
}

#[test]
fn config_set_maxmemory_evicts_at_once() {
    let s = common::ferrocache(&[]);
    let mut r = s.conn();
    r.q("CONFIG SET notify-keyspace-events Een");
    r.q("CONFIG SET maxmemory-policy allkeys-lru");
    let mut sub = s.conn();
    sub.q("PSUBSCRIBE *");
    r.q("SET foo bar");
    let new = sub.read();
    assert_eq!(new.items()[2], bulk("__keyevent@0__:new"));
    // One key among 1024 shards: eviction must still find it.
    r.q("CONFIG SET maxmemory 1");
    let ev = sub.read();
    assert_eq!(ev.items()[2..], [bulk("__keyevent@0__:evicted"), bulk("foo")]);
    r.q("CONFIG SET maxmemory 0");
}

#[test]
fn client_tracking_as_redis() {
    let s = common::ferrocache(&[]);
    let mut w = s.conn();
    // BCAST: the keys of one command arrive in one message, sorted.
    let mut c = s.conn();
    c.q("HELLO 3");
    c.q("CLIENT TRACKING on BCAST");
    w.q("MSET c{t} 3 a{t} 1 b{t} 2");
    assert_eq!(
        c.read(),
        Reply::Push(vec![bulk("invalidate"), Reply::Array(vec![bulk("a{t}"), bulk("b{t}"), bulk("c{t}")])])
    );
    // Prefix collisions are refused with Redis's text.
    let mut fresh = s.conn();
    let e = fresh.q("CLIENT TRACKING on BCAST PREFIX FOOBAR PREFIX FOO").as_str();
    assert!(e.starts_with("ERR Prefix 'FOOBAR' overlaps with another provided prefix 'FOO'"), "{}", e);
    // A script that calls a read-only command tracks its declared keys.
    let mut t = s.conn();
    t.q("HELLO 3");
    t.q("CLIENT TRACKING on");
    t.cmd(&["EVAL", "redis.call('get', 'key3')", "2", "key1", "key2"]);
    w.q("MSET key2 2 key1 2");
    assert_eq!(t.read(), Reply::Push(vec![bulk("invalidate"), Reply::Array(vec![bulk("key2")])]));
    assert_eq!(t.read(), Reply::Push(vec![bulk("invalidate"), Reply::Array(vec![bulk("key1")])]));
    // A RESP2 client without redirection gets no invalidation at all (the next reply is PONG).
    let mut two = s.conn();
    two.q("CLIENT TRACKING on");
    two.q("GET k2");
    w.q("SET k2 v");
    assert_eq!(two.q("PING"), Reply::Simple("PONG".into()));
}

#[test]
fn migrate_without_keys_answers_nokey() {
    let s = common::ferrocache(&[]);
    let mut r = s.conn();
    let port = s.port.to_string();
    assert_eq!(r.cmd(&["MIGRATE", "127.0.0.1", &port, "nokey", "9", "5000"]), Reply::Simple("NOKEY".into()));
    assert_eq!(
        r.cmd(&["MIGRATE", "127.0.0.1", &port, "nokey", "9", "5000", "AUTH2", "user", "password"]),
        Reply::Simple("NOKEY".into())
    );
    // SLOWLOG/MONITOR redact the password: it is not in the slowlog entry.
    r.q("CONFIG SET slowlog-log-slower-than 0");
    r.cmd(&["MIGRATE", "127.0.0.1", &port, "nokey", "9", "5000", "AUTH", "secret"]);
    let log = format!("{:?}", r.q("SLOWLOG GET 2"));
    assert!(!log.contains("secret") && log.contains("(redacted)"), "{}", log);
}

/// introspection.tcl: maxmemory-clients takes a memory value or a percentage (Redis's
/// PERCENT_CONFIG texts), and hidden configs answer CONFIG GET by exact name only.
#[test]
fn maxmemory_clients_percent_and_hidden_configs_as_redis() {
    let f = common::ferrocache(&[]);
    let r = common::redis_server(&[]);
    let lines: &[&[&str]] = &[
        &["CONFIG", "SET", "maxmemory-clients", "200%"],
        &["CONFIG", "SET", "maxmemory-clients", "10%"],
        &["CONFIG", "GET", "maxmemory-clients"],
        &["CONFIG", "SET", "maxmemory-clients", "abc"],
        &["CONFIG", "SET", "maxmemory-clients", "1mb"],
        &["CONFIG", "GET", "maxmemory-clients"],
        &["CONFIG", "GET", "key-load-delay"],
    ];
    let mut fc = f.conn();
    let ours: Vec<String> = lines.iter().map(|l| format!("{:?}", fc.cmd(l))).collect();
    assert!(ours[0].contains("percentage argument must be less or equal to 100"), "{:?}", ours);
    assert!(!format!("{:?}", fc.cmd(&["CONFIG", "GET", "*"])).contains("key-load-delay"));
    if let Some(r) = r {
        let mut rc = r.conn();
        let theirs: Vec<String> = lines.iter().map(|l| format!("{:?}", rc.cmd(l))).collect();
        assert_eq!(ours, theirs);
    }
}

/// pause.tcl: under CLIENT PAUSE WRITE, scripts that declare `no-writes` (EVAL, EVALSHA, FCALL)
/// run, other scripts wait; keys that expire meanwhile are hidden but not deleted (expired_keys
/// stays put) until the pause ends.
#[test]
fn client_pause_write_lets_no_writes_scripts_run_and_holds_expiry() {
    let f = common::ferrocache(&[]);
    let mut c = f.conn();
    c.cmd(&["FUNCTION", "LOAD", "#!lua name=l\nredis.register_function{function_name='f1', callback=function() return 'hello' end, flags={'no-writes'}}"]);
    c.q("SET foo bar PX 50");
    let expired0 = c.q("INFO stats").as_str();
    let count =
        |info: &str| info.lines().find_map(|l| l.strip_prefix("expired_keys:")).unwrap_or("").trim().to_string();
    assert_eq!(c.q("CLIENT PAUSE 100000 WRITE").as_str(), "OK");
    let mut rr = f.conn();
    rr.set_timeout(Duration::from_secs(5));
    assert_eq!(rr.cmd(&["EVAL", "#!lua flags=no-writes\nreturn 'unique script'", "0"]).as_str(), "unique script");
    let sha = rr.cmd(&["SCRIPT", "LOAD", "#!lua flags=no-writes\nreturn 2"]).as_str();
    assert_eq!(rr.cmd(&["EVALSHA", &sha, "0"]).as_int(), 2);
    assert_eq!(rr.cmd(&["FCALL", "f1", "0"]).as_str(), "hello");
    std::thread::sleep(Duration::from_millis(200));
    assert!(matches!(rr.q("GET foo"), Reply::Nil), "the expired key is hidden");
    assert_eq!(count(&c.q("INFO stats").as_str()), count(&expired0), "expired during the pause");
    // A script without flags may write: it waits for the pause.
    rr.set_timeout(Duration::from_millis(300));
    rr.send_cmd(&["EVAL", "return 1", "0"]);
    assert!(rr.try_read().is_err(), "a script that may write ran during CLIENT PAUSE WRITE");
    assert_eq!(c.q("CLIENT UNPAUSE").as_str(), "OK");
    rr.set_timeout(Duration::from_secs(5));
    assert_eq!(rr.read().as_int(), 1);
    c.q("GET foo");
    assert_ne!(count(&c.q("INFO stats").as_str()), count(&expired0), "expires resume after the pause");
}

fn info_u64(c: &mut Raw, field: &str) -> u64 {
    let info = c.q("INFO").as_str();
    let line = info.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap_or_else(|| panic!("no {field}"));
    line[field.len() + 1..].trim().parse().unwrap()
}

#[test]
fn sscan_hscan_zscan_return_every_element_present_throughout_despite_removals() {
    // scan.tcl "SCAN regression test for issue #4906": most members removed mid-scan must not
    // make the cursor skip members that stay (an index cursor shifted them out of reach).
    let s = common::ferrocache(&[]);
    let mut r = s.conn();
    for round in 0..30usize {
        r.q("DEL set hash zset");
        let n = 101 + round * 31;
        let members: Vec<String> = (0..n).map(|j| format!("m{j}")).collect();
        let mut sadd = vec!["SADD".to_string(), "set".into()];
        let mut hset = vec!["HSET".to_string(), "hash".into()];
        let mut zadd = vec!["ZADD".to_string(), "zset".into()];
        for (j, m) in members.iter().enumerate() {
            sadd.push(m.clone());
            hset.extend([m.clone(), "v".into()]);
            zadd.extend([j.to_string(), m.clone()]);
        }
        r.cmd(&sadd);
        r.cmd(&hset);
        r.cmd(&zadd);
        let removed: Vec<String> = members[100..].to_vec();
        for (scan, key, del, pairs) in
            [("SSCAN", "set", "SREM", false), ("HSCAN", "hash", "HDEL", true), ("ZSCAN", "zset", "ZREM", true)]
        {
            let mut found = std::collections::HashSet::new();
            let mut cursor = "0".to_string();
            let mut iteration = 0;
            loop {
                let Reply::Array(parts) = r.cmd(&[scan, key, &cursor]) else { panic!("{scan}") };
                cursor = parts[0].as_str();
                let Reply::Array(items) = &parts[1] else { panic!() };
                let step = if pairs { 2 } else { 1 };
                for it in items.iter().step_by(step) {
                    found.insert(it.as_str());
                }
                iteration += 1;
                if iteration == 1 + round % 3 {
                    let mut cmd = vec![del.to_string(), key.to_string()];
                    cmd.extend(removed.iter().cloned());
                    r.cmd(&cmd);
                }
                if cursor == "0" {
                    break;
                }
                assert!(iteration < 10_000, "{scan} never ends");
            }
            for m in &members[..100] {
                assert!(found.contains(m), "{scan} round {round}: {m} was never returned");
            }
        }
    }
}

#[test]
fn unlink_and_flush_async_free_big_values_in_the_background() {
    // lazyfree.tcl: UNLINK of a big value and FLUSHDB ASYNC count in lazyfreed_objects; a small
    // value is freed at once (not counted); memory comes back.
    let s = common::ferrocache(&[]);
    let mut r = s.conn();
    let before = info_u64(&mut r, "used_memory");
    let mut sadd = vec!["SADD".to_string(), "big".into()];
    sadd.extend((0..100_000).map(|i| i.to_string()));
    assert_eq!(r.cmd(&sadd), Reply::Int(100_000));
    let peak = info_u64(&mut r, "used_memory");
    assert!(peak > before + 1_000_000, "{before} -> {peak}");
    r.q("CONFIG RESETSTAT");
    r.q("SET small x");
    assert_eq!(r.q("UNLINK big small"), Reply::Int(2));
    let deadline = Instant::now() + Duration::from_secs(5);
    while info_u64(&mut r, "lazyfree_pending_objects") > 0 {
        assert!(Instant::now() < deadline, "lazyfree never done");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(info_u64(&mut r, "lazyfreed_objects"), 1, "only the big set goes to the lazyfree thread");
    // The 700 KB request's argument table is not kept by the connection either.
    let after = info_u64(&mut r, "used_memory");
    assert!(after < before * 2, "used_memory {before} -> {peak} -> {after}");
    for i in 0..10 {
        r.cmd(&["SET", &format!("k{i}"), "v"]);
    }
    r.q("FLUSHDB ASYNC");
    let deadline = Instant::now() + Duration::from_secs(5);
    while info_u64(&mut r, "lazyfreed_objects") < 11 {
        assert!(Instant::now() < deadline, "FLUSHDB ASYNC keys never counted");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(r.q("DBSIZE"), Reply::Int(0));
}

#[test]
fn a_blocked_command_counts_as_one_call() {
    // stream-cgroups.tcl: XGROUP DESTROY unblocks XREADGROUP with -NOGROUP; commandstats count
    // it once (calls=1, failed_calls=1), not once per retry.
    let s = common::ferrocache(&[]);
    let mut r = s.conn();
    let mut rd = s.conn();
    r.q("CONFIG RESETSTAT");
    r.q("XGROUP CREATE mystream mygroup $ MKSTREAM");
    rd.send_cmd(&["XREADGROUP", "GROUP", "mygroup", "Alice", "BLOCK", "0", "STREAMS", "mystream", ">"]);
    wait_blocked(&mut r, 1);
    r.q("XGROUP DESTROY mystream mygroup");
    assert!(matches!(rd.read(), Reply::Error(e) if e.starts_with("NOGROUP")));
    rd.send_cmd(&["BLPOP", "nolist", "0.05"]);
    assert_eq!(rd.read(), Reply::NilArray);
    let stats = r.q("INFO commandstats").as_str();
    assert!(stats.contains("cmdstat_xreadgroup:calls=1,"), "{stats}");
    assert!(
        stats.lines().any(|l| l.starts_with("cmdstat_xreadgroup:calls=1,") && l.ends_with("failed_calls=1")),
        "{stats}"
    );
    assert!(stats.lines().any(|l| l.starts_with("cmdstat_blpop:calls=1,")), "a timed-out BLPOP counts once: {stats}");
    let errs = r.q("INFO errorstats").as_str();
    assert!(errs.contains("errorstat_NOGROUP:count=1"), "{errs}");
}

#[test]
fn config_set_port_rebinds_or_fails_whole() {
    // introspection.tcl: a port in use fails the whole CONFIG SET with Redis's text and rolls
    // every parameter back; a free port moves the listener and connected clients stay.
    let s = common::ferrocache(&[]);
    let mut r = s.conn();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port().to_string();
    let e = r.cmd(&["CONFIG", "SET", "maxmemory", "12345678", "port", &busy_port]);
    assert_eq!(
        e,
        Reply::Error(
            "ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port".into()
        )
    );
    assert_eq!(r.q("CONFIG GET maxmemory").items()[1], bulk("0"));
    assert_eq!(r.q("CONFIG GET port").items()[1], bulk(&s.port.to_string()));
    drop(busy);
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    assert_eq!(r.cmd(&["CONFIG", "SET", "port", &free.to_string()]), Reply::Simple("OK".into()));
    // The old listener closes and the new one accepts; this connection stays.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", s.port)).is_ok() {
        assert!(Instant::now() < deadline, "the old port still accepts");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut n = Raw::connect(free);
    assert_eq!(n.q("PING"), Reply::Simple("PONG".into()));
    assert!(n.q("INFO server").as_str().contains(&format!("tcp_port:{free}\r\n")));
    assert_eq!(r.q("PING"), Reply::Simple("PONG".into()));
    // Moving back to the original port works too (so the harness can shut it down).
    assert_eq!(r.cmd(&["CONFIG", "SET", "port", &s.port.to_string()]), Reply::Simple("OK".into()));
}

#[test]
fn randomkey_returns_every_key_of_a_small_keyspace() {
    // keyspace.tcl "RANDOMKEY": with two keys, 100 calls see both. Taking the first non-empty
    // shard after a random one returned one of them only, for some key placements.
    let s = common::ferrocache(&[]);
    let mut r = s.conn();
    for round in 0..100 {
        r.q("FLUSHDB");
        let (a, b) = (format!("foo{round}"), format!("bar{round}"));
        r.cmd(&["SET", &a, "x"]);
        r.cmd(&["SET", &b, "y"]);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100 {
            seen.insert(r.q("RANDOMKEY").as_str());
        }
        assert_eq!(seen.len(), 2, "round {round}: only {seen:?}");
    }
    r.q("FLUSHDB");
    assert_eq!(r.q("RANDOMKEY"), Reply::Nil);
}

/// DEBUG DIGEST / DIGEST-VALUE (Redis's cluster suite compares masters and replicas with them):
/// the same hex as redis-server for the same data, every type, expiry and database included.
#[test]
fn debug_digest_as_redis() {
    let Some(r) = common::redis_server(&["--enable-debug-command", "yes"]) else {
        eprintln!("SKIPPED: redis-server is not on PATH");
        return;
    };
    let f = common::ferrocache(&["--enable-debug-command", "yes"]);
    let mut out = Vec::new();
    for p in [&f, &r] {
        let mut c = p.conn();
        let mut got = vec![c.q("DEBUG DIGEST").as_str()];
        for cmd in [
            "DEBUG POPULATE 100 pk 12",
            "MSET a 1 b hello c 12345678901",
            "RPUSH l x y z",
            "SADD s 1 2 abc",
            "ZADD z 1.5 m 2 n -3e10 o",
            "HSET h f v g w",
            "XADD st 1-1 f v",
            "EXPIRE a 100",
            "SELECT 2",
            "SET k v",
        ] {
            assert!(!c.q(cmd).is_error(), "{}", cmd);
        }
        got.push(c.q("DEBUG DIGEST").as_str());
        c.q("SELECT 0");
        let vals = c.q("DEBUG DIGEST-VALUE a l s z h st nokey");
        got.extend(vals.items().iter().map(|v| v.as_str()));
        out.push(got);
    }
    assert_eq!(out[0][0], "0".repeat(40));
    assert_ne!(out[0][1], out[0][0]);
    assert_eq!(out[0], out[1]);
}
