//! End-to-end tests of client-facing features against a ferrocache process, compared with a
//! real redis-server where it is installed (SKIPPED otherwise): MULTI/EXEC/WATCH, keyspace
//! notifications, client-side caching (CLIENT TRACKING modes), CLIENT KILL / PAUSE / REPLY /
//! LIST. Helpers: tests/common/resp.rs.

mod common;
#[path = "common/resp.rs"]
mod resp;

use common::Reply;
use resp::*;
use std::time::{Duration, Instant};

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
        // Redis frees the victim inside CLIENT KILL: the next CLIENT LIST no longer shows it.
        let list = a.q("CLIENT LIST").as_str();
        assert!(!list.contains("name=victim"), "{}: killed client still listed: {}", name, list);
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
