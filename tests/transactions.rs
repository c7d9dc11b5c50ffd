//! WATCH/MULTI/EXEC under contention: optimistic transactions from many connections never lose
//! an update. Each check counts the EXECs that succeeded and compares with what the keys hold
//! at the end (redis-server is exact here; so must we be).

mod common;

use common::Raw;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

const THREADS: usize = 8;
const RUN: Duration = Duration::from_secs(3);

fn int(r: &common::Reply) -> i64 {
    match r.as_bytes() {
        Some(b) => std::str::from_utf8(b).unwrap().parse().unwrap(),
        None => 0,
    }
}

/// Run `body` on THREADS connections for RUN; returns the sum of what the bodies counted.
fn hammer(port: u16, body: fn(&mut Raw, usize, &mut u64) -> u64) -> u64 {
    let total = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let total = total.clone();
            std::thread::spawn(move || {
                let mut c = Raw::connect(port);
                let deadline = Instant::now() + RUN;
                let mut seed = t as u64 * 7919 + 1;
                while Instant::now() < deadline {
                    total.fetch_add(body(&mut c, t, &mut seed), Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    total.load(Relaxed)
}

/// WATCH k; GET k; MULTI; SET k v+1; EXEC — the exact loop.
fn incr_loop(c: &mut Raw, _t: usize, _seed: &mut u64) -> u64 {
    c.q("WATCH counter");
    let v = int(&c.q("GET counter"));
    c.q("MULTI");
    c.cmd(&["SET", "counter", &(v + 1).to_string()]);
    committed(&c.q("EXEC"))
}

/// 1 when EXEC ran the transaction, 0 when WATCH aborted it (a null array).
fn committed(r: &common::Reply) -> u64 {
    match r {
        common::Reply::Array(_) => 1,
        common::Reply::NilArray => 0,
        other => panic!("EXEC answered {:?}", other),
    }
}

#[test]
fn watch_exec_counter_loses_no_update() {
    let f = common::ferrocache(&[]);
    let ok = hammer(f.port, incr_loop);
    assert!(ok > 100, "too few transactions went through: {}", ok);
    let v = int(&f.conn().q("GET counter"));
    assert_eq!(v as u64, ok, "{} EXECs succeeded but the counter is {}", ok, v);
}

fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

const ACCOUNTS: u64 = 16;

/// Balance transfers between accounts (different shards), WATCHing both sides; every fourth
/// transfer runs as a Lua script instead; a few plain EXECs without WATCH touch the accounts
/// too (a deposit and a withdrawal of the same amount in one transaction).
fn transfer_loop(c: &mut Raw, _t: usize, seed: &mut u64) -> u64 {
    let a = format!("acct:{}", next(seed) % ACCOUNTS);
    let b = format!("acct:{}", next(seed) % ACCOUNTS);
    let amount = (next(seed) % 5 + 1) as i64;
    match next(seed) % 4 {
        0 => {
            let r = c.cmd(&[
                "EVAL",
                "local a = tonumber(redis.call('GET', KEYS[1])) if a >= tonumber(ARGV[1]) then redis.call('DECRBY', KEYS[1], ARGV[1]) redis.call('INCRBY', KEYS[2], ARGV[1]) return 1 end return 0",
                "2",
                &a,
                &b,
                &amount.to_string(),
            ]);
            r.as_int() as u64
        }
        1 => {
            c.q("MULTI");
            c.cmd(&["INCRBY", &a, &amount.to_string()]);
            c.cmd(&["DECRBY", &a, &amount.to_string()]);
            assert_eq!(committed(&c.q("EXEC")), 1);
            0
        }
        _ => {
            c.cmd(&["WATCH", &a, &b]);
            let va = int(&c.cmd(&["GET", &a]));
            let vb = int(&c.cmd(&["GET", &b]));
            if va < amount || a == b {
                c.q("UNWATCH");
                return 0;
            }
            c.q("MULTI");
            c.cmd(&["SET", &a, &(va - amount).to_string()]);
            c.cmd(&["SET", &b, &(vb + amount).to_string()]);
            committed(&c.q("EXEC"))
        }
    }
}

#[test]
fn watch_exec_transfers_keep_the_total() {
    let f = common::ferrocache(&[]);
    let mut c = f.conn();
    for i in 0..ACCOUNTS {
        c.cmd(&["SET", &format!("acct:{}", i), "625"]);
    }
    let moved = hammer(f.port, transfer_loop);
    assert!(moved > 100, "too few transfers went through: {}", moved);
    let total: i64 = (0..ACCOUNTS).map(|i| int(&c.cmd(&["GET", &format!("acct:{}", i)]))).sum();
    assert_eq!(total, 10_000, "the accounts drifted after {} transfers", moved);
    for i in 0..ACCOUNTS {
        assert!(int(&c.cmd(&["GET", &format!("acct:{}", i)])) >= 0, "an account went negative");
    }
}
