//! Generators of the lists, sets, sorted sets and HyperLogLog families.

use super::*;
use rand::Rng;

// ---------------------------------------------------------------------------------------------
// lists

pub const LISTS: &[(u32, Gen)] = &[
    (1, |g, o| o.push(cmd!("DEL", g.pick(LKEYS)))),
    (8, |g, o| {
        let name = g.pick(&["LPUSH", "RPUSH", "LPUSH", "RPUSH", "LPUSHX", "RPUSHX"]);
        let mut v = cmd!(name, g.tk(LKEYS));
        for _ in 0..g.r.gen_range(1..5) {
            v.push(g.elem());
        }
        if g.p(0.02) {
            v.truncate(2);
        }
        o.push(v)
    }),
    (4, |g, o| {
        let mut v = cmd!(g.pick(&["LPOP", "RPOP"]), g.tk(LKEYS));
        if g.p(0.4) {
            v.push(g.count_s());
        }
        o.push(v)
    }),
    (2, |g, o| o.push(cmd!("LLEN", g.tk(LKEYS)))),
    (5, |g, o| o.push(cmd!("LRANGE", g.tk(LKEYS), g.small_idx(), g.small_idx()))),
    (2, |g, o| o.push(cmd!("LINDEX", g.tk(LKEYS), g.small_idx()))),
    (2, |g, o| o.push(cmd!("LSET", g.tk(LKEYS), g.small_idx(), g.elem()))),
    (2, |g, o| {
        o.push(cmd!("LINSERT", g.tk(LKEYS), g.pick(&["BEFORE", "AFTER", "after", "MIDDLE"]), g.elem(), g.elem()))
    }),
    (2, |g, o| o.push(cmd!("LREM", g.tk(LKEYS), g.pick(&["0", "1", "-1", "2", "-2", "x"]), g.elem()))),
    (2, |g, o| o.push(cmd!("LTRIM", g.tk(LKEYS), g.small_idx(), g.small_idx()))),
    (3, |g, o| {
        let mut v = cmd!("LPOS", g.tk(LKEYS), g.elem());
        for _ in 0..g.r.gen_range(0..3) {
            match g.r.gen_range(0..4) {
                0 => v.extend(cmd!("RANK", g.pick(&["1", "2", "-1", "-2", "0", "x", "-9223372036854775808"]))),
                1 => v.extend(cmd!("COUNT", g.pick(&["0", "1", "2", "-1"]))),
                2 => v.extend(cmd!("MAXLEN", g.pick(&["0", "1", "3", "-1"]))),
                _ => v.push(b"BOGUS".to_vec()),
            }
        }
        o.push(v)
    }),
    (2, |g, o| {
        let (a, b) = (g.pick(&["LEFT", "RIGHT", "left", "UP"]), g.pick(&["LEFT", "RIGHT"]));
        o.push(cmd!("LMOVE", g.tk(LKEYS), g.tk(LKEYS), a, b))
    }),
    (1, |g, o| o.push(cmd!("RPOPLPUSH", g.tk(LKEYS), g.tk(LKEYS)))),
    (2, |g, o| {
        let mut v = cmd!("LMPOP");
        g.numkeys(LKEYS, &mut v);
        v.push(g.pick(&["LEFT", "RIGHT", "MIDDLE"]).as_bytes().to_vec());
        if g.p(0.5) {
            v.extend(cmd!("COUNT", g.count_s()));
        }
        o.push(v)
    }),
    // blocking: with data they return at once, otherwise they time out after a few ms
    (2, |g, o| {
        let mut v = cmd!(g.pick(&["BLPOP", "BRPOP"]));
        for _ in 0..g.r.gen_range(1..3) {
            v.push(g.tk(LKEYS));
        }
        v.push(g.btimeout());
        o.push(v)
    }),
    (1, |g, o| {
        let mut v = cmd!("BLMPOP", g.btimeout());
        g.numkeys(LKEYS, &mut v);
        v.push(g.pick(&["LEFT", "RIGHT"]).as_bytes().to_vec());
        if g.p(0.5) {
            v.extend(cmd!("COUNT", g.count_s()));
        }
        o.push(v)
    }),
    (1, |g, o| {
        if g.p(0.5) {
            o.push(cmd!(
                "BLMOVE",
                g.tk(LKEYS),
                g.tk(LKEYS),
                g.pick(&["LEFT", "RIGHT"]),
                g.pick(&["LEFT", "RIGHT"]),
                g.btimeout()
            ))
        } else {
            o.push(cmd!("BRPOPLPUSH", g.tk(LKEYS), g.tk(LKEYS), g.btimeout()))
        }
    }),
];

// ---------------------------------------------------------------------------------------------
// sets

pub const SETS: &[(u32, Gen)] = &[
    (1, |g, o| o.push(cmd!("DEL", g.pick(SKEYS)))),
    (8, |g, o| {
        let mut v = cmd!("SADD", g.tk(SKEYS));
        for _ in 0..g.r.gen_range(1..5) {
            v.push(g.elem());
        }
        o.push(v)
    }),
    (3, |g, o| {
        let mut v = cmd!("SREM", g.tk(SKEYS));
        for _ in 0..g.r.gen_range(1..3) {
            v.push(g.elem());
        }
        o.push(v)
    }),
    (3, |g, o| o.push(cmd!(g.pick(&["SMEMBERS", "SCARD"]), g.tk(SKEYS)))),
    (2, |g, o| o.push(cmd!("SISMEMBER", g.tk(SKEYS), g.elem()))),
    (2, |g, o| {
        let mut v = cmd!("SMISMEMBER", g.tk(SKEYS));
        for _ in 0..g.r.gen_range(1..4) {
            v.push(g.elem());
        }
        o.push(v)
    }),
    (2, |g, o| o.push(cmd!("SMOVE", g.tk(SKEYS), g.tk(SKEYS), g.elem()))),
    (4, |g, o| {
        let name = g.pick(&["SINTER", "SUNION", "SDIFF", "SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]);
        let mut v = cmd!(name);
        if name.ends_with("STORE") {
            v.push(g.tk(SKEYS));
        }
        for _ in 0..g.r.gen_range(1..4) {
            v.push(g.tk(SKEYS));
        }
        o.push(v)
    }),
    (1, |g, o| {
        let mut v = cmd!("SINTERCARD");
        g.numkeys(SKEYS, &mut v);
        if g.p(0.5) {
            v.extend(cmd!("LIMIT", g.pick(&["0", "1", "2", "-1", "x"])));
        }
        o.push(v)
    }),
    (2, |g, o| {
        let mut v = cmd!("SPOP", g.tk(SKEYS));
        if g.p(0.6) {
            v.push(g.count_s());
        }
        o.push(v)
    }),
    (2, |g, o| {
        let mut v = cmd!("SRANDMEMBER", g.tk(SKEYS));
        if g.p(0.7) {
            v.push(g.count_s());
        }
        o.push(v)
    }),
    (1, |g, o| {
        let mut v = cmd!("SSCAN", g.tk(SKEYS), "0");
        if g.p(0.4) {
            v.extend(cmd!("MATCH", g.pick(&["*", "1*", "?", "[a-c]"])));
        }
        if g.p(0.3) {
            v.extend(cmd!("COUNT", g.pick(&["1", "2", "10"])));
        }
        o.push(v)
    }),
    (1, |g, o| o.push(cmd!("OBJECT", "ENCODING", g.tk(SKEYS)))),
    (1, |g, o| o.push(cmd!("CONFIG", "SET", "set-max-intset-entries", g.pick(&["2", "4", "512", "x"])))),
];

// ---------------------------------------------------------------------------------------------
// sorted sets

pub fn zrange_opts(g: &mut G, v: &mut Cmd, by: Option<&str>, allow_withscores: bool) {
    if g.p(0.3) && by.is_some() {
        v.extend(cmd!("LIMIT", g.pick(&["0", "1", "2", "-1", "x"]), g.pick(&["1", "2", "-1", "0", "10"])));
    }
    if allow_withscores && g.p(0.4) {
        v.push(b"WITHSCORES".to_vec());
    }
}

pub fn gen_zrange(g: &mut G, o: &mut Vec<Cmd>) {
    let store = g.p(0.25);
    let mut v = if store { cmd!("ZRANGESTORE", g.tk(ZKEYS), g.tk(ZKEYS)) } else { cmd!("ZRANGE", g.tk(ZKEYS)) };
    let by = match g.r.gen_range(0..3) {
        0 => None,
        1 => Some("BYSCORE"),
        _ => Some("BYLEX"),
    };
    let rev = g.p(0.3);
    match by {
        None => v.extend([g.small_idx(), g.small_idx()]),
        Some("BYSCORE") => v.extend([g.score_bound(), g.score_bound()]),
        _ => v.extend([g.lex_bound(), g.lex_bound()]),
    }
    if let Some(b) = by {
        v.push(b.as_bytes().to_vec());
    }
    if rev {
        v.push(b"REV".to_vec());
    }
    if g.p(0.3) {
        v.extend(cmd!("LIMIT", g.pick(&["0", "1", "2", "-1", "x"]), g.pick(&["1", "2", "-1", "0", "10"])));
    }
    if !store && g.p(0.4) {
        v.push(b"WITHSCORES".to_vec());
    }
    if g.p(0.02) {
        v.push(b"BOGUS".to_vec());
    }
    o.push(v)
}

pub fn gen_zsetop(g: &mut G, o: &mut Vec<Cmd>) {
    let name = g.pick(&["ZUNION", "ZINTER", "ZDIFF", "ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE", "ZINTERCARD"]);
    let mut v = cmd!(name);
    if name.ends_with("STORE") {
        v.push(g.tk(ZKEYS));
    }
    let n = g.r.gen_range(1..4);
    v.push(if g.p(0.03) { b"0".to_vec() } else { n.to_string().into_bytes() });
    for _ in 0..n {
        // sets are valid inputs too
        let k = if g.p(0.2) { g.pick(SKEYS).as_bytes().to_vec() } else { g.tk(ZKEYS) };
        v.push(k);
    }
    if name == "ZINTERCARD" {
        if g.p(0.4) {
            v.extend(cmd!("LIMIT", g.pick(&["0", "1", "2", "-1"])));
        }
    } else if name != "ZDIFF" && name != "ZDIFFSTORE" {
        if g.p(0.4) {
            v.push(b"WEIGHTS".to_vec());
            let m = if g.p(0.9) { n } else { n + 1 };
            for _ in 0..m {
                v.push(g.pick(&["1", "2", "0", "-1", "0.5", "inf", "x"]).as_bytes().to_vec());
            }
        }
        if g.p(0.4) {
            v.extend(cmd!("AGGREGATE", g.pick(&["SUM", "MIN", "MAX", "AVG"])));
        }
    }
    if !name.ends_with("STORE") && name != "ZINTERCARD" && g.p(0.5) {
        v.push(b"WITHSCORES".to_vec());
    }
    o.push(v)
}

pub const ZSETS: &[(u32, Gen)] = &[
    (1, |g, o| o.push(cmd!("DEL", g.pick(ZKEYS)))),
    (10, |g, o| {
        let mut v = cmd!("ZADD", g.tk(ZKEYS));
        if g.p(0.4) {
            for f in ["NX", "XX", "GT", "LT", "CH", "INCR"] {
                if g.p(0.2) {
                    v.push(f.as_bytes().to_vec());
                }
            }
        }
        for _ in 0..g.r.gen_range(1..4) {
            v.push(g.score());
            v.push(g.zmember());
        }
        if g.p(0.02) {
            v.pop();
        }
        o.push(v)
    }),
    (2, |g, o| o.push(cmd!("ZINCRBY", g.tk(ZKEYS), g.score(), g.zmember()))),
    (3, |g, o| {
        let mut v = cmd!("ZREM", g.tk(ZKEYS));
        for _ in 0..g.r.gen_range(1..3) {
            v.push(g.zmember());
        }
        o.push(v)
    }),
    (2, |g, o| o.push(cmd!("ZCARD", g.tk(ZKEYS)))),
    (2, |g, o| o.push(cmd!(g.pick(&["ZSCORE", "ZRANK", "ZREVRANK"]), g.tk(ZKEYS), g.zmember()))),
    (1, |g, o| {
        let mut v = cmd!("ZMSCORE", g.tk(ZKEYS));
        for _ in 0..g.r.gen_range(1..4) {
            v.push(g.zmember());
        }
        o.push(v)
    }),
    (2, |g, o| o.push(cmd!("ZCOUNT", g.tk(ZKEYS), g.score_bound(), g.score_bound()))),
    (1, |g, o| o.push(cmd!("ZLEXCOUNT", g.tk(ZKEYS), g.lex_bound(), g.lex_bound()))),
    (8, gen_zrange),
    (3, |g, o| {
        let name = g.pick(&["ZRANGEBYSCORE", "ZREVRANGEBYSCORE", "ZRANGEBYLEX", "ZREVRANGEBYLEX"]);
        let mut v = cmd!(name, g.tk(ZKEYS));
        if name.contains("LEX") {
            v.extend([g.lex_bound(), g.lex_bound()]);
        } else {
            v.extend([g.score_bound(), g.score_bound()]);
        }
        zrange_opts(g, &mut v, Some("x"), !name.contains("LEX"));
        o.push(v)
    }),
    (1, |g, o| o.push(cmd!(g.pick(&["ZREVRANGE"]), g.tk(ZKEYS), g.small_idx(), g.small_idx()))),
    (2, |g, o| {
        let name = g.pick(&["ZREMRANGEBYRANK", "ZREMRANGEBYSCORE", "ZREMRANGEBYLEX"]);
        let (a, b) = match name {
            "ZREMRANGEBYRANK" => (g.small_idx(), g.small_idx()),
            "ZREMRANGEBYSCORE" => (g.score_bound(), g.score_bound()),
            _ => (g.lex_bound(), g.lex_bound()),
        };
        o.push(cmd!(name, g.tk(ZKEYS), a, b))
    }),
    (3, |g, o| {
        let mut v = cmd!(g.pick(&["ZPOPMIN", "ZPOPMAX"]), g.tk(ZKEYS));
        if g.p(0.5) {
            v.push(g.count_s());
        }
        o.push(v)
    }),
    (1, |g, o| {
        let mut v = cmd!(g.pick(&["BZPOPMIN", "BZPOPMAX"]));
        for _ in 0..g.r.gen_range(1..3) {
            v.push(g.tk(ZKEYS));
        }
        v.push(g.btimeout());
        o.push(v)
    }),
    (2, |g, o| {
        let blocking = g.p(0.4);
        let mut v = if blocking { cmd!("BZMPOP", g.btimeout()) } else { cmd!("ZMPOP") };
        g.numkeys(ZKEYS, &mut v);
        v.push(g.pick(&["MIN", "MAX", "min", "MID"]).as_bytes().to_vec());
        if g.p(0.5) {
            v.extend(cmd!("COUNT", g.count_s()));
        }
        o.push(v)
    }),
    (4, gen_zsetop),
    (2, |g, o| {
        let mut v = cmd!("ZRANDMEMBER", g.tk(ZKEYS));
        if g.p(0.7) {
            v.push(g.count_s());
            if g.p(0.5) {
                v.push(b"WITHSCORES".to_vec());
            }
        }
        o.push(v)
    }),
    (1, |g, o| {
        let mut v = cmd!("ZSCAN", g.tk(ZKEYS), "0");
        if g.p(0.4) {
            v.extend(cmd!("MATCH", g.pick(&["*", "a*", "?", "[a-c]"])));
        }
        o.push(v)
    }),
    (1, |g, o| o.push(cmd!("OBJECT", "ENCODING", g.tk(ZKEYS)))),
    (1, |g, o| o.push(cmd!("CONFIG", "SET", "zset-max-listpack-entries", g.pick(&["2", "4", "128", "x"])))),
];

// ---------------------------------------------------------------------------------------------
// HyperLogLog

pub const HLL: &[(u32, Gen)] = &[
    (1, |g, o| o.push(cmd!("DEL", g.pick(PKEYS)))),
    (5, |g, o| {
        let mut v = cmd!("PFADD", g.tk(PKEYS));
        for _ in 0..g.r.gen_range(0..6) {
            v.push(if g.p(0.5) { g.elem() } else { g.r.gen_range(0..3000).to_string().into_bytes() });
        }
        o.push(v)
    }),
    (4, |g, o| {
        let mut v = cmd!("PFCOUNT");
        for _ in 0..g.r.gen_range(1..4) {
            v.push(g.tk(PKEYS));
        }
        o.push(v)
    }),
    (2, |g, o| {
        let mut v = cmd!("PFMERGE", g.tk(PKEYS));
        for _ in 0..g.r.gen_range(0..3) {
            v.push(g.tk(PKEYS));
        }
        o.push(v)
    }),
    (1, |g, o| o.push(cmd!("GET", g.tk(PKEYS)))),
    (1, |g, o| {
        // many elements at once: the sparse -> dense conversion
        let mut v = cmd!("PFADD", g.pick(PKEYS));
        let base = g.r.gen_range(0..100000);
        for i in 0..g.r.gen_range(100..800) {
            v.push(format!("e{}", base + i).into_bytes());
        }
        o.push(v)
    }),
];
