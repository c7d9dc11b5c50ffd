//! Generators of the geo, SORT, streams and scripting families.

use super::*;
use rand::Rng;

// ---------------------------------------------------------------------------------------------
// geo

pub fn gen_geosearch(g: &mut G, o: &mut Vec<Cmd>) {
    let store = g.p(0.25);
    let mut v = if store { cmd!("GEOSEARCHSTORE", g.tk(ZKEYS), g.tk(GKEYS)) } else { cmd!("GEOSEARCH", g.tk(GKEYS)) };
    if g.p(0.5) {
        v.extend(cmd!("FROMMEMBER", g.gmember()));
    } else {
        let (lo, la) = g.lonlat();
        v.extend(cmd!("FROMLONLAT", lo, la));
    }
    if g.p(0.5) {
        v.extend(cmd!("BYRADIUS", g.radius(), g.unit()));
    } else {
        v.extend(cmd!("BYBOX", g.radius(), g.radius(), g.unit()));
    }
    geo_opts(g, &mut v, store);
    if store && g.p(0.4) {
        v.push(b"STOREDIST".to_vec());
    }
    o.push(v)
}

pub fn geo_opts(g: &mut G, v: &mut Cmd, store: bool) {
    if g.p(0.5) {
        v.push(g.pick(&["ASC", "DESC"]).as_bytes().to_vec());
    }
    if g.p(0.4) {
        v.extend(cmd!("COUNT", g.pick(&["1", "2", "3", "0", "-1"])));
        if g.p(0.15) {
            v.push(b"ANY".to_vec());
        }
    }
    if !store {
        for w in ["WITHCOORD", "WITHDIST", "WITHHASH"] {
            if g.p(0.3) {
                v.push(w.as_bytes().to_vec());
            }
        }
    }
}

pub fn gen_georadius(g: &mut G, o: &mut Vec<Cmd>) {
    let name = g.pick(&["GEORADIUS", "GEORADIUS_RO", "GEORADIUSBYMEMBER", "GEORADIUSBYMEMBER_RO"]);
    let mut v = cmd!(name, g.tk(GKEYS));
    if name.contains("MEMBER") {
        v.push(g.gmember());
    } else {
        let (lo, la) = g.lonlat();
        v.extend([lo, la]);
    }
    v.extend([g.radius(), g.unit()]);
    let store = !name.ends_with("_RO") && g.p(0.25);
    geo_opts(g, &mut v, store);
    if store {
        v.extend(cmd!(g.pick(&["STORE", "STOREDIST"]), g.tk(ZKEYS)));
    }
    o.push(v)
}

pub const GEO: &[(u32, Gen)] = &[
    (1, |g, o| o.push(cmd!("DEL", g.pick(GKEYS)))),
    (6, |g, o| {
        let mut v = cmd!("GEOADD", g.tk(GKEYS));
        for f in ["NX", "XX", "CH"] {
            if g.p(0.1) {
                v.push(f.as_bytes().to_vec());
            }
        }
        for _ in 0..g.r.gen_range(1..4) {
            let (lo, la) = g.lonlat();
            v.extend([lo, la, g.gmember()]);
        }
        o.push(v)
    }),
    (2, |g, o| {
        let mut v = cmd!("GEODIST", g.tk(GKEYS), g.gmember(), g.gmember());
        if g.p(0.6) {
            v.push(g.unit());
        }
        o.push(v)
    }),
    (2, |g, o| {
        let mut v = cmd!(g.pick(&["GEOPOS", "GEOHASH"]), g.tk(GKEYS));
        for _ in 0..g.r.gen_range(0..4) {
            v.push(g.gmember());
        }
        o.push(v)
    }),
    (5, gen_geosearch),
    (4, gen_georadius),
    (1, |g, o| o.push(cmd!("ZRANGE", g.tk(GKEYS), "0", "-1", "WITHSCORES"))),
];

// ---------------------------------------------------------------------------------------------
// SORT

pub const SORT: &[(u32, Gen)] = &[(1, gen_sort)];

pub fn gen_sort(g: &mut G, o: &mut Vec<Cmd>) {
    let ro = g.p(0.25);
    let src = match g.r.gen_range(0..4) {
        0 => g.pick(SKEYS),
        1 => g.pick(ZKEYS),
        _ => g.pick(LKEYS),
    };
    let src = if g.p(0.85) { src.as_bytes().to_vec() } else { g.anykey() };
    let mut v = cmd!(if ro { "SORT_RO" } else { "SORT" }, src);
    let alpha = g.p(0.5);
    // ALPHA by a pattern leaves equal weights in an unstable order: compared as a multiset,
    // so neither LIMIT nor STORE (which would make the servers' states differ).
    let mut unordered = false;
    if g.p(0.4) {
        let by = g.pick(&["nosort", "w_*", "h*->f1", "nosuch*", "w_*->f", "*"]);
        unordered = by == "nosort" || by == "nosuch*" || alpha;
        v.extend(cmd!("BY", by));
    }
    if g.p(0.3) && !unordered {
        v.extend(cmd!("LIMIT", g.pick(&["0", "1", "2", "-1"]), g.pick(&["1", "2", "3", "-1", "0"])));
    }
    for _ in 0..g.r.gen_range(0..3) {
        if g.p(0.5) {
            v.extend(cmd!("GET", g.pick(&["#", "w_*", "h*->f1", "nosuch*", "w_*->f0"])));
        }
    }
    if g.p(0.4) {
        v.push(g.pick(&["ASC", "DESC"]).as_bytes().to_vec());
    }
    if alpha {
        v.push(b"ALPHA".to_vec());
    }
    if !ro && (!unordered || !alpha) && g.p(0.25) {
        v.extend(cmd!("STORE", g.tk(LKEYS)));
    }
    if g.p(0.02) {
        v.push(b"BOGUS".to_vec());
    }
    // weights/values for the BY/GET patterns (w_<elem> strings, h<elem> hashes)
    if g.p(0.3) {
        let e = g.elem();
        let mut k = b"w_".to_vec();
        k.extend_from_slice(&e);
        o.push(cmd!("SET", k, g.score()));
    }
    if g.p(0.1) {
        let e = g.pick(&["1", "2", "a"]);
        o.push(cmd!("HSET", format!("h{}", e), "f1", g.score()));
    }
    o.push(v)
}

// ---------------------------------------------------------------------------------------------
// streams

pub fn fields(g: &mut G, v: &mut Cmd) {
    for _ in 0..g.r.gen_range(1..3) {
        v.push(g.pick(&["f", "g", "name"]).as_bytes().to_vec());
        v.push(g.elem());
    }
}

pub fn trim_opts(g: &mut G, v: &mut Cmd, required: bool) {
    if required || g.p(0.2) {
        v.push(g.pick(&["MAXLEN", "MINID", "maxlen", "BOGUS"]).as_bytes().to_vec());
        if g.p(0.3) {
            v.push(g.pick(&["=", "~"]).as_bytes().to_vec());
        }
        if upper(v.last().unwrap()).starts_with("MINID") || (v.len() > 1 && upper(&v[v.len() - 2]) == "MINID") {
            v.push(g.range_id());
        } else {
            v.push(g.pick(&["0", "1", "2", "5", "-1", "x"]).as_bytes().to_vec());
        }
        if g.p(0.1) {
            v.extend(cmd!("LIMIT", g.pick(&["0", "10", "-1"])));
        }
    }
}

pub const STREAMS: &[(u32, Gen)] = &[
    (1, |g, o| o.push(cmd!("DEL", g.pick(XKEYS)))),
    (10, |g, o| {
        let mut v = cmd!("XADD", g.tk(XKEYS));
        if g.p(0.1) {
            v.push(b"NOMKSTREAM".to_vec());
        }
        trim_opts(g, &mut v, false);
        v.push(g.xadd_id());
        fields(g, &mut v);
        if g.p(0.02) {
            v.pop();
        }
        o.push(v)
    }),
    (2, |g, o| o.push(cmd!(g.pick(&["XLEN"]), g.tk(XKEYS)))),
    (5, |g, o| {
        let rev = g.p(0.3);
        let mut v = cmd!(if rev { "XREVRANGE" } else { "XRANGE" }, g.tk(XKEYS), g.range_id(), g.range_id());
        if g.p(0.3) {
            v.extend(cmd!("COUNT", g.pick(&["0", "1", "2", "-1", "x"])));
        }
        o.push(v)
    }),
    (2, |g, o| {
        let mut v = cmd!("XTRIM", g.tk(XKEYS));
        trim_opts(g, &mut v, true);
        o.push(v)
    }),
    (2, |g, o| {
        let mut v = cmd!("XDEL", g.tk(XKEYS));
        for _ in 0..g.r.gen_range(1..3) {
            v.push(g.stream_id());
        }
        o.push(v)
    }),
    (4, |g, o| {
        let mut v = cmd!("XGROUP");
        match g.r.gen_range(0..7) {
            0..=2 => {
                v.extend(cmd!("CREATE", g.tk(XKEYS), g.group(), g.pick(&["0", "0", "$", "1-1", "x"])));
                if g.p(0.5) {
                    v.push(b"MKSTREAM".to_vec());
                }
                if g.p(0.2) {
                    v.extend(cmd!("ENTRIESREAD", g.pick(&["0", "1", "5", "-1", "x"])));
                }
            }
            3 => v.extend(cmd!("SETID", g.tk(XKEYS), g.group(), g.pick(&["0", "$", "2-0"]))),
            4 => v.extend(cmd!("DESTROY", g.tk(XKEYS), g.group())),
            5 => v.extend(cmd!(g.pick(&["CREATECONSUMER", "DELCONSUMER"]), g.tk(XKEYS), g.group(), g.consumer())),
            _ => v.push(g.pick(&["HELP", "BOGUS"]).as_bytes().to_vec()),
        }
        o.push(v)
    }),
    (2, |g, o| {
        let mut v = cmd!("XREAD");
        if g.p(0.3) {
            v.extend(cmd!("COUNT", g.pick(&["1", "2", "0"])));
        }
        if g.p(0.2) {
            v.extend(cmd!("BLOCK", g.pick(&["10", "1"])));
        }
        v.push(b"STREAMS".to_vec());
        let n = g.r.gen_range(1..3);
        for _ in 0..n {
            v.push(g.tk(XKEYS));
        }
        for _ in 0..n {
            v.push(if g.p(0.2) { b"$".to_vec() } else { g.range_id() });
        }
        o.push(v)
    }),
    (4, |g, o| {
        let mut v = cmd!("XREADGROUP", "GROUP", g.group(), g.consumer());
        if g.p(0.3) {
            v.extend(cmd!("COUNT", g.pick(&["1", "2", "0"])));
        }
        if g.p(0.15) {
            v.extend(cmd!("BLOCK", g.pick(&["10", "1"])));
        }
        if g.p(0.2) {
            v.push(b"NOACK".to_vec());
        }
        v.push(b"STREAMS".to_vec());
        v.push(g.tk(XKEYS));
        v.push(if g.p(0.7) { b">".to_vec() } else { g.pick(&["0", "0-0", "2-0", "$"]).as_bytes().to_vec() });
        o.push(v)
    }),
    (2, |g, o| {
        let mut v = cmd!("XACK", g.tk(XKEYS), g.group());
        for _ in 0..g.r.gen_range(1..3) {
            v.push(g.stream_id());
        }
        o.push(v)
    }),
    (3, |g, o| {
        let mut v = cmd!("XPENDING", g.tk(XKEYS), g.group());
        if g.p(0.6) {
            if g.p(0.3) {
                v.extend(cmd!("IDLE", g.pick(&["0", "100000000"])));
            }
            v.extend([g.range_id(), g.range_id(), g.pick(&["1", "10", "0", "-1"]).as_bytes().to_vec()]);
            if g.p(0.4) {
                v.push(g.consumer());
            }
        }
        o.push(v)
    }),
    (2, |g, o| {
        let mut v = cmd!("XCLAIM", g.tk(XKEYS), g.group(), g.consumer(), g.pick(&["0", "0", "100000000", "x"]));
        for _ in 0..g.r.gen_range(1..3) {
            v.push(g.stream_id());
        }
        for opt in ["JUSTID", "FORCE", "LASTID", "RETRYCOUNT", "IDLE"] {
            if g.p(0.15) {
                v.push(opt.as_bytes().to_vec());
                match opt {
                    "LASTID" => v.push(g.stream_id()),
                    "RETRYCOUNT" => v.push(g.pick(&["0", "5", "x"]).as_bytes().to_vec()),
                    "IDLE" => v.push(g.pick(&["0", "1000"]).as_bytes().to_vec()),
                    _ => {}
                }
            }
        }
        o.push(v)
    }),
    (2, |g, o| {
        let mut v = cmd!("XAUTOCLAIM", g.tk(XKEYS), g.group(), g.consumer(), g.pick(&["0", "100000000"]), g.range_id());
        if g.p(0.4) {
            v.extend(cmd!("COUNT", g.pick(&["1", "2", "100", "0"])));
        }
        if g.p(0.3) {
            v.push(b"JUSTID".to_vec());
        }
        o.push(v)
    }),
    (2, |g, o| {
        let sub = g.pick(&["STREAM", "STREAM", "GROUPS", "CONSUMERS", "BOGUS"]);
        let mut v = cmd!("XINFO", sub, g.tk(XKEYS));
        if sub == "CONSUMERS" {
            v.push(g.group());
        }
        if sub == "STREAM" && g.p(0.4) {
            v.push(b"FULL".to_vec());
            if g.p(0.3) {
                v.extend(cmd!("COUNT", g.pick(&["1", "0", "5"])));
            }
        }
        o.push(v)
    }),
    (1, |g, o| o.push(cmd!("XSETID", g.tk(XKEYS), g.stream_id()))),
];

// ---------------------------------------------------------------------------------------------
// scripting basics: fixed scripts calling part-2 commands

pub const SCRIPTS: &[(&str, usize)] = &[
    ("return redis.call('RPUSH', KEYS[1], ARGV[1], ARGV[2])", 2),
    ("return redis.call('LRANGE', KEYS[1], 0, -1)", 0),
    ("local n = redis.call('LLEN', KEYS[1]); redis.call('LPUSH', KEYS[1], n); return n", 0),
    ("return redis.pcall('ZADD', KEYS[1], ARGV[1], ARGV[2])", 2),
    ("return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')", 0),
    ("return redis.call('ZSCORE', KEYS[1], ARGV[1])", 1),
    ("return redis.call('ZINCRBY', KEYS[1], ARGV[1], ARGV[2])", 2),
    ("local m = redis.call('SMEMBERS', KEYS[1]); table.sort(m); return m", 0),
    ("return redis.call('SADD', KEYS[1], ARGV[1])", 1),
    ("return redis.call('SISMEMBER', KEYS[1], ARGV[1])", 1),
    ("return redis.pcall('XADD', KEYS[1], ARGV[1], 'f', 'v')", 1),
    ("return redis.call('XRANGE', KEYS[1], '-', '+')", 0),
    ("return redis.call('PFADD', KEYS[1], ARGV[1], ARGV[2])", 2),
    ("return redis.call('PFCOUNT', KEYS[1])", 0),
    ("return redis.call('BLPOP', KEYS[1], 0)", 0),
    ("return redis.call('SORT', KEYS[1], 'ALPHA')", 0),
    ("return redis.call('GEOPOS', KEYS[1], ARGV[1])", 1),
    ("return redis.call('LPOP', KEYS[1], 2)", 0),
    ("local t = redis.call('TYPE', KEYS[1]); return t.ok", 0),
    ("return redis.call('ZPOPMIN', KEYS[1])", 0),
    ("return {redis.call('LPOS', KEYS[1], ARGV[1]), redis.call('EXISTS', KEYS[1])}", 1),
];

pub const SCRIPTING: &[(u32, Gen)] = &[(1, |g, o| {
    let (src, nargs) = SCRIPTS[g.r.gen_range(0..SCRIPTS.len())];
    let mut v = cmd!(if g.p(0.2) { "EVAL_RO" } else { "EVAL" }, src, "1", g.anykey());
    if src.contains("ZADD") || src.contains("ZINCRBY") {
        // score then member
        v.push(g.score());
        v.push(g.zmember());
    } else {
        for _ in 0..nargs {
            v.push(g.elem());
        }
    }
    o.push(v)
})];
