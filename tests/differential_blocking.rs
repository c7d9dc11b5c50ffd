//! Differential test of the blocking commands driven from several connections: each scenario
//! runs against ferrocache and a real redis-server (started by the test; skipped when it is not
//! on PATH) and the observable transcripts must be identical.

mod common;

use common::Raw;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// blocking commands driven from several connections

/// Multi-connection scenarios for the blocking commands, run against both servers; the
/// observable transcript (every reply, in the order it is read) must be identical.
///
/// Step syntax: `N> CMD` sends CMD on client N and waits until one more client is blocked;
/// `N: CMD` sends CMD on client N and reads its reply; `N?` reads client N's pending reply;
/// `sleep MS`. Arguments split on whitespace, or on " | " when the line holds one. At the end
/// the pending replies of all clients are read in client order.
const BLOCKING_SCENARIOS: &[(&str, &[&str])] = &[
    (
        "three BLPOP, two pushed",
        &["0> BLPOP k 0.3", "1> BLPOP k 0.3", "2> BLPOP k 0.3", "3: RPUSH k a b", "0?", "1?", "2?", "3: EXISTS k"],
    ),
    (
        "BRPOP several keys, push to the second",
        &["0> BRPOP k1 k2 0.3", "1> BRPOP k2 k1 0.3", "3: LPUSH k2 x y z", "0?", "1?", "3: LRANGE k2 0 -1"],
    ),
    (
        "pushing several keys in one MULTI",
        &[
            "0> BLPOP k1 k2 0.3",
            "1> BLPOP k2 0.3",
            "3: MULTI",
            "3: RPUSH k2 a",
            "3: RPUSH k1 b",
            "3: EXEC",
            "0?",
            "1?",
            "3: LRANGE k1 0 -1",
        ],
    ),
    (
        "BLMOVE chains into a BLPOP",
        &[
            "0> BLMOVE src dst LEFT RIGHT 0.3",
            "1> BLPOP dst 0.3",
            "3: RPUSH src x y",
            "0?",
            "1?",
            "3: LRANGE src 0 -1",
            "3: LRANGE dst 0 -1",
        ],
    ),
    ("BRPOPLPUSH rotating one list", &["0> BRPOPLPUSH k k 0.3", "3: RPUSH k a b", "0?", "3: LRANGE k 0 -1"]),
    (
        "push and pop in a transaction serve nobody",
        &["0> BLPOP k 0.2", "3: MULTI", "3: LPUSH k a", "3: LPOP k", "3: EXEC", "0?", "3: EXISTS k"],
    ),
    ("a wrong type key keeps the client blocked", &["0> BLPOP k 0.3", "3: SET k x", "3: DEL k", "3: RPUSH k a", "0?"]),
    (
        "push from a script",
        &[
            "0> BLPOP k 0.3",
            "1> BLPOP k 0.3",
            "3: EVAL | redis.call('RPUSH', KEYS[1], 'a', 'b', 'c') return redis.call('LLEN', KEYS[1]) | 1 | k",
            "0?",
            "1?",
            "3: LRANGE k 0 -1",
        ],
    ),
    (
        "BLMPOP with COUNT",
        &[
            "0> BLMPOP 0.3 2 k1 k2 LEFT COUNT 2",
            "1> BLMPOP 0.3 1 k2 RIGHT COUNT 5",
            "3: RPUSH k2 a b c",
            "0?",
            "1?",
            "3: EXISTS k2",
        ],
    ),
    (
        "BZPOPMIN/BZPOPMAX",
        &[
            "0> BZPOPMIN z 0.3",
            "1> BZPOPMAX z 0.3",
            "2> BZPOPMIN z 0.3",
            "3: ZADD z 1 a 2 b 3 c",
            "0?",
            "1?",
            "2?",
            "3: ZRANGE z 0 -1 WITHSCORES",
        ],
    ),
    ("BZMPOP", &["0> BZMPOP 0.3 2 z1 z2 MAX COUNT 2", "3: ZADD z2 1 a 2 b 3 c", "0?", "3: ZRANGE z2 0 -1 WITHSCORES"]),
    (
        "XREAD BLOCK on $ from two readers",
        &[
            "3: XADD s 1-1 f v",
            "0> XREAD BLOCK 300 STREAMS s $",
            "1> XREAD COUNT 5 BLOCK 300 STREAMS s $",
            "3: XADD s 2-1 f w",
            "0?",
            "1?",
        ],
    ),
    (
        "XREADGROUP BLOCK: one entry serves one consumer",
        &[
            "3: XGROUP CREATE s g $ MKSTREAM",
            "0> XREADGROUP GROUP g c1 BLOCK 300 STREAMS s >",
            "1> XREADGROUP GROUP g c2 BLOCK 300 STREAMS s >",
            "3: XADD s 5-1 f v",
            "0?",
            "1?",
            "3: XPENDING s g",
        ],
    ),
    (
        "XREADGROUP blocked when the group is destroyed",
        &[
            "3: XGROUP CREATE s g $ MKSTREAM",
            "0> XREADGROUP GROUP g c1 BLOCK 300 STREAMS s >",
            "3: XGROUP DESTROY s g",
            "0?",
        ],
    ),
    (
        "XREADGROUP blocked when the stream is deleted",
        &["3: XGROUP CREATE s g $ MKSTREAM", "0> XREADGROUP GROUP g c1 BLOCK 300 STREAMS s >", "3: DEL s", "0?"],
    ),
    ("timeouts only", &["0> BLPOP k 0.05", "1> BZPOPMIN z 0.05", "2> XREAD BLOCK 50 STREAMS s 0", "0?", "1?", "2?"]),
    (
        "LMOVE into a watched blocked key",
        &["3: RPUSH src a", "0> BLPOP dst 0.3", "3: LMOVE src dst LEFT LEFT", "0?", "3: EXISTS src dst"],
    ),
    (
        "SORT STORE serves a blocked client",
        &["3: RPUSH src 3 1 2", "0> BLPOP dst 0.3", "3: SORT src STORE dst", "0?", "3: LRANGE dst 0 -1"],
    ),
];

fn blocked_clients(ctl: &mut Raw) -> i64 {
    let info = ctl.cmd(&["INFO", "clients"]).as_str();
    info.lines().find_map(|l| l.strip_prefix("blocked_clients:")).and_then(|v| v.trim().parse().ok()).unwrap_or(-1)
}

fn run_scenario(srv: &common::ServerProc, steps: &[&str]) -> Vec<String> {
    let mut ctl = srv.conn();
    ctl.cmd(&["FLUSHALL"]);
    let mut clients: Vec<Raw> = (0..4).map(|_| srv.conn()).collect();
    let mut pending = [0usize; 4];
    let mut log = Vec::new();
    for step in steps {
        if let Some(ms) = step.strip_prefix("sleep ") {
            std::thread::sleep(Duration::from_millis(ms.parse().unwrap()));
            continue;
        }
        let n: usize = step[..1].parse().unwrap();
        let (op, rest) = (&step[1..2], step[2..].trim());
        let args: Vec<&str> =
            if rest.contains(" | ") { rest.split(" | ").collect() } else { rest.split_whitespace().collect() };
        match op {
            ">" => {
                let before = blocked_clients(&mut ctl);
                clients[n].send_cmd(&args);
                pending[n] += 1;
                let deadline = Instant::now() + Duration::from_secs(2);
                while blocked_clients(&mut ctl) <= before && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(2));
                }
                log.push(format!("c{} sent {}", n, rest));
            }
            ":" => {
                let r = clients[n].cmd(&args);
                log.push(format!("c{} {} => {:?}", n, rest, r));
            }
            "?" => {
                let r = clients[n].read();
                pending[n] -= 1;
                log.push(format!("c{} reply => {:?}", n, r));
            }
            _ => panic!("bad step {:?}", step),
        }
    }
    for (n, c) in clients.iter_mut().enumerate() {
        while pending[n] > 0 {
            let r = c.read();
            pending[n] -= 1;
            log.push(format!("c{} reply => {:?}", n, r));
        }
    }
    log.push(format!("blocked at end: {}", blocked_clients(&mut ctl)));
    log
}

#[test]
fn differential_blocking_multi_client() {
    let redis = redis_or_skip!(&[]);
    let ferro = common::ferrocache(&[]);
    let mut failures = Vec::new();
    for (name, steps) in BLOCKING_SCENARIOS {
        let want = run_scenario(&redis, steps);
        let got = run_scenario(&ferro, steps);
        if want != got {
            failures.push(format!("scenario {:?}:\n  redis:      {:#?}\n  ferrocache: {:#?}", name, want, got));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scenarios differ:\n{}",
        failures.len(),
        BLOCKING_SCENARIOS.len(),
        failures.join("\n")
    );
}
