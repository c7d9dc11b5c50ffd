//! Differential testing: one seeded random command stream is sent to ferrocache and to a real
//! redis-server (started by the test), and every reply is compared exactly, except for what must
//! differ (randomness, clocks, ids) which is normalised per command.
//!
//! Bounded by default (FERRO_DIFF_COMMANDS, default 5000 commands; FERRO_DIFF_SECS, default 45 s).
//! FERRO_DIFF_SEED=S replays a stream. FERRO_DIFF_KEEP_GOING=1 reports every mismatch (the
//! keyspace is flushed on both sides after each one) instead of stopping at the first.
//! FERRO_DIFF_TRACE=1 prints every command with Redis's reply.
//!
//! Other command families plug in by adding a `Family` (a name and a table of weighted generator
//! functions) to `FAMILIES`, and, where their replies are not deterministic, a rule in `norm`.

mod common;
#[path = "common/differential/mod.rs"]
mod diff;

use common::Reply;
use diff::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn differential_part1() {
    let redis = redis_or_skip!(&[]);
    let ferro = common::ferrocache(&[]);
    let seed = env_u64("FERRO_DIFF_SEED").unwrap_or_else(rand::random);
    let total = env_u64("FERRO_DIFF_COMMANDS").unwrap_or(5000);
    let secs =
        env_u64("FERRO_DIFF_SECS").unwrap_or(if std::env::var("FERRO_DIFF_COMMANDS").is_ok() { u64::MAX } else { 45 });
    let keep_going = std::env::var("FERRO_DIFF_KEEP_GOING").is_ok();
    let trace = std::env::var("FERRO_DIFF_TRACE").is_ok();
    eprintln!(
        "differential: seed={} commands={} (replay: FERRO_DIFF_SEED={} cargo test --test differential)",
        seed, total, seed
    );

    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let mut g = G { r: SmallRng::seed_from_u64(seed), now_s, xseq: 0 };
    let mut a = ferro.conn();
    let mut b = redis.conn();
    let weights: Vec<u32> = FAMILIES.iter().map(|f| f.gens.iter().map(|x| x.0).sum()).collect();
    let wsum: u32 = weights.iter().sum();
    let start = Instant::now();
    let mut history: Vec<String> = Vec::new();
    let mut sent = 0u64;
    let mut mismatches = Vec::new();
    let mut in_multi = false;
    while sent < total && start.elapsed() < Duration::from_secs(secs) {
        let mut x = g.r.gen_range(0..wsum);
        let mut fi = 0;
        while x >= weights[fi] {
            x -= weights[fi];
            fi += 1;
        }
        let fam = &FAMILIES[fi];
        let gsum: u32 = fam.gens.iter().map(|x| x.0).sum();
        let mut y = g.r.gen_range(0..gsum);
        let mut gi = 0;
        while y >= fam.gens[gi].0 {
            y -= fam.gens[gi].0;
            gi += 1;
        }
        let mut cmds = Vec::new();
        (fam.gens[gi].1)(&mut g, &mut cmds);
        for cmd in cmds {
            sent += 1;
            let name = upper(&cmd[0]);
            if !in_multi && lex_unspecified(&mut b, &cmd) {
                // Lex ranges over members with different scores: unspecified, not sent.
                continue;
            }
            let ra = run(&mut a, &cmd, in_multi);
            let rb = run(&mut b, &cmd, in_multi);
            if name == "MULTI" && rb == Reply::Simple("OK".into()) {
                in_multi = true;
            }
            if (name == "EXEC" || name == "DISCARD") && in_multi {
                in_multi = false;
            }
            history.push(format!("[{}] {} -> {:?}", fam.name, show(&cmd), rb));
            if trace {
                eprintln!("{}", history.last().unwrap());
            }
            let mut ok = same(&cmd, in_multi, &ra, &rb);
            if ok && name == "SPOP" && !in_multi {
                ok = spop_repair(&mut a, &mut b, &cmd[1], &ra, &rb);
            }
            if !ok {
                let ctx: Vec<String> = history.iter().rev().take(15).rev().cloned().collect();
                let msg = format!(
                    "MISMATCH at command #{} (seed {}):\n  command:     {}\n  ferrocache:  {:?}\n  redis:       {:?}\n  context (last 15, redis replies):\n    {}",
                    sent,
                    seed,
                    show(&cmd),
                    ra,
                    rb,
                    ctx.join("\n    ")
                );
                if !keep_going {
                    panic!("{}", msg);
                }
                eprintln!("{}\n", msg);
                mismatches.push(show(&cmd));
                // Resynchronise both sides.
                for c in [&mut a, &mut b] {
                    if in_multi {
                        c.cmd(&["DISCARD"]);
                    }
                    c.cmd(&["FLUSHALL"]);
                    c.cmd(&["SELECT", "0"]);
                }
                in_multi = false;
                history.clear();
            }
        }
    }
    eprintln!(
        "differential: {} commands in {:.1}s, {} mismatches (seed {})",
        sent,
        start.elapsed().as_secs_f64(),
        mismatches.len(),
        seed
    );
    assert!(mismatches.is_empty(), "{} mismatches: {:#?}", mismatches.len(), mismatches);
    // Both servers must still be alive and agree on the final keyspace size.
    assert_eq!(a.cmd(&["DBSIZE"]), b.cmd(&["DBSIZE"]));
}
