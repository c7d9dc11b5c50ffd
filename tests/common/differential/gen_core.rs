//! Generators of the strings, bits, keys, hashes, connection/server, transactions and
//! pub/sub families.

use super::*;
use rand::Rng;

// ---------------------------------------------------------------------------------------------
// strings

pub const STRINGS: &[(u32, Gen)] = &[
    (6, |g, o| o.push(cmd!("GET", g.key()))),
    (8, gen_set),
    (1, |g, o| o.push(cmd!("SETNX", g.key(), g.value()))),
    (1, |g, o| o.push(cmd!("SETEX", g.key(), g.secs(), g.value()))),
    (1, |g, o| o.push(cmd!("PSETEX", g.key(), g.millis(), g.value()))),
    (1, |g, o| o.push(cmd!("GETSET", g.key(), g.value()))),
    (1, |g, o| o.push(cmd!("GETDEL", g.key()))),
    (2, gen_getex),
    (2, |g, o| {
        let n = g.r.gen_range(0..5);
        let mut v = cmd!("MGET");
        for _ in 0..n {
            v.push(g.key());
        }
        o.push(v)
    }),
    (2, |g, o| {
        let name = if g.p(0.7) { "MSET" } else { "MSETNX" };
        let mut v = cmd!(name);
        let n = g.r.gen_range(1..4);
        for _ in 0..n {
            v.push(g.key());
            v.push(g.value());
        }
        if g.p(0.05) {
            v.pop();
        }
        o.push(v)
    }),
    (2, |g, o| o.push(cmd!("APPEND", g.key(), g.value()))),
    (1, |g, o| o.push(cmd!("STRLEN", g.key()))),
    (2, |g, o| o.push(cmd!(g.pick(&["INCR", "DECR"]), g.key()))),
    (2, |g, o| o.push(cmd!(g.pick(&["INCRBY", "DECRBY"]), g.key(), g.int_s()))),
    (3, |g, o| o.push(cmd!("INCRBYFLOAT", g.key(), g.float_s()))),
    (2, |g, o| {
        let off = match g.r.gen_range(0..8) {
            0 => b"-1".to_vec(),
            1 => b"536870912".to_vec(),
            2 => b"x".to_vec(),
            _ => g.r.gen_range(0..30).to_string().into_bytes(),
        };
        o.push(cmd!("SETRANGE", g.key(), off, g.value()))
    }),
    (2, |g, o| o.push(cmd!(g.pick(&["GETRANGE", "SUBSTR"]), g.key(), g.idx(), g.idx()))),
    (2, |g, o| {
        let mut v = cmd!("LCS", g.key(), g.key());
        if g.p(0.3) {
            v.push(b"LEN".to_vec());
        } else if g.p(0.5) {
            v.push(b"IDX".to_vec());
            if g.p(0.5) {
                v.push(b"MINMATCHLEN".to_vec());
                v.push(g.r.gen_range(0..4).to_string().into_bytes());
            }
            if g.p(0.5) {
                v.push(b"WITHMATCHLEN".to_vec());
            }
        }
        if g.p(0.05) {
            v.push(b"BOGUS".to_vec());
        }
        o.push(v)
    }),
];

pub fn gen_set(g: &mut G, o: &mut Vec<Cmd>) {
    let mut v = cmd!("SET", g.key(), g.value());
    if g.p(0.3) {
        match g.r.gen_range(0..5) {
            0 => v.extend([b"EX".to_vec(), g.secs()]),
            1 => v.extend([b"PX".to_vec(), g.millis()]),
            2 => v.extend([b"EXAT".to_vec(), g.future_secs()]),
            3 => v.extend([
                b"PXAT".to_vec(),
                (g.now_s * 1000 + g.r.gen_range(100_000..10_000_000)).to_string().into_bytes(),
            ]),
            _ => v.push(b"KEEPTTL".to_vec()),
        }
    }
    if g.p(0.25) {
        v.push(g.pick(&["NX", "XX", "nx", "xx"]).as_bytes().to_vec());
    }
    if g.p(0.2) {
        v.push(b"GET".to_vec());
    }
    if g.p(0.04) {
        v.push(g.pick(&["EX", "PX", "BOGUS", "KEEPTTL", "EXAT"]).as_bytes().to_vec());
    }
    o.push(v)
}

pub fn gen_getex(g: &mut G, o: &mut Vec<Cmd>) {
    let mut v = cmd!("GETEX", g.key());
    match g.r.gen_range(0..7) {
        0 => v.extend([b"EX".to_vec(), g.secs()]),
        1 => v.extend([b"PX".to_vec(), g.millis()]),
        2 => v.extend([b"EXAT".to_vec(), g.future_secs()]),
        3 => v.push(b"PERSIST".to_vec()),
        4 => v.push(g.pick(&["EX", "BOGUS", "PERSIST"]).as_bytes().to_vec()),
        _ => {}
    }
    if g.p(0.03) {
        v.push(b"PERSIST".to_vec());
    }
    o.push(v)
}

// ---------------------------------------------------------------------------------------------
// bits

pub const BITS: &[(u32, Gen)] = &[
    (3, |g, o| {
        let off = match g.r.gen_range(0..8) {
            0 => b"-1".to_vec(),
            1 => b"4294967296".to_vec(),
            2 => b"x".to_vec(),
            _ => g.r.gen_range(0..200).to_string().into_bytes(),
        };
        let bit = g.pick(&["0", "1", "1", "2", "x"]);
        o.push(cmd!("SETBIT", g.key(), off, bit))
    }),
    (2, |g, o| o.push(cmd!("GETBIT", g.key(), g.r.gen_range(0..220).to_string()))),
    (3, |g, o| {
        let mut v = cmd!("BITCOUNT", g.key());
        if g.p(0.7) {
            v.push(g.idx());
            v.push(g.idx());
            if g.p(0.4) {
                v.push(g.pick(&["BYTE", "BIT", "bit", "WORD"]).as_bytes().to_vec());
            }
        } else if g.p(0.1) {
            v.push(g.idx());
        }
        o.push(v)
    }),
    (3, |g, o| {
        let mut v = cmd!("BITPOS", g.key(), g.pick(&["0", "1", "1", "2"]));
        if g.p(0.6) {
            v.push(g.idx());
            if g.p(0.6) {
                v.push(g.idx());
                if g.p(0.4) {
                    v.push(g.pick(&["BYTE", "BIT", "bit", "WORD"]).as_bytes().to_vec());
                }
            }
        }
        o.push(v)
    }),
    (2, |g, o| {
        let op = g.pick(&["AND", "OR", "XOR", "NOT", "not", "NAND"]);
        let mut v = cmd!("BITOP", op, g.key());
        let n = if op.eq_ignore_ascii_case("not") && g.p(0.8) { 1 } else { g.r.gen_range(1..4) };
        for _ in 0..n {
            v.push(g.key());
        }
        o.push(v)
    }),
    (4, |g, o| {
        let ro = g.p(0.2);
        let mut v = cmd!(if ro { "BITFIELD_RO" } else { "BITFIELD" }, g.key());
        let n = g.r.gen_range(0..4);
        for _ in 0..n {
            let ty = g.pick(&["i8", "u8", "i16", "u4", "i1", "u1", "i64", "u63", "u64", "i65", "x8", "I5"]);
            let off = match g.r.gen_range(0..6) {
                0 => format!("#{}", g.r.gen_range(0..5)),
                1 => "-1".into(),
                _ => g.r.gen_range(0..70).to_string(),
            };
            match if ro { 0 } else { g.r.gen_range(0..4) } {
                0 => v.extend(cmd!("GET", ty, off)),
                1 => v.extend(cmd!("SET", ty, off, g.int_s())),
                2 => v.extend(cmd!("INCRBY", ty, off, g.int_s())),
                _ => v.extend(cmd!("OVERFLOW", g.pick(&["WRAP", "SAT", "FAIL", "sat", "NONE"]))),
            }
        }
        if g.p(0.03) {
            v.push(b"GET".to_vec());
        }
        o.push(v)
    }),
];

// ---------------------------------------------------------------------------------------------
// keys

pub const KEYS: &[(u32, Gen)] = &[
    (3, |g, o| {
        let name = g.pick(&["DEL", "UNLINK", "EXISTS", "TOUCH"]);
        let mut v = cmd!(name);
        for _ in 0..g.r.gen_range(1..4) {
            v.push(g.key());
        }
        o.push(v)
    }),
    (3, |g, o| o.push(cmd!("TYPE", g.key()))),
    (4, |g, o| {
        let name = g.pick(&["EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT"]);
        let t = match name {
            "EXPIRE" => g.secs(),
            "PEXPIRE" => g.millis(),
            "EXPIREAT" => g.abs_secs(),
            _ => {
                let mut s = g.abs_secs();
                s.extend_from_slice(b"000");
                s
            }
        };
        let mut v = cmd!(name, g.key(), t);
        if g.p(0.4) {
            v.push(g.pick(&["NX", "XX", "GT", "LT", "nx", "BOGUS"]).as_bytes().to_vec());
            if g.p(0.15) {
                v.push(g.pick(&["NX", "XX", "GT", "LT"]).as_bytes().to_vec());
            }
        }
        o.push(v)
    }),
    (4, |g, o| o.push(cmd!(g.pick(&["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"]), g.key()))),
    (1, |g, o| o.push(cmd!("PERSIST", g.key()))),
    (2, |g, o| o.push(cmd!(g.pick(&["RENAME", "RENAMENX"]), g.key(), g.key()))),
    (2, |g, o| {
        let mut v = cmd!("COPY", g.key(), g.key());
        if g.p(0.3) {
            v.extend(cmd!("DB", g.pick(&["0", "1", "99", "x"])));
        }
        if g.p(0.4) {
            v.push(b"REPLACE".to_vec());
        }
        o.push(v)
    }),
    (1, |g, o| o.push(cmd!("MOVE", g.key(), g.pick(&["0", "1", "1", "16", "-1", "x"])))),
    (1, |g, o| o.push(cmd!("SWAPDB", g.pick(&["0", "1", "x"]), g.pick(&["0", "1", "2", "-1"])))),
    (2, |g, o| o.push(cmd!("KEYS", g.pick(&["*", "h*", "?", "[a-c]", "{t}*", "*x", "[^a]", "\\*", "n"])))),
    (2, |g, o| {
        let mut v = cmd!("SCAN", "0");
        if g.p(0.4) {
            v.extend(cmd!("MATCH", g.pick(&["*", "h*", "?", "[a-c]"])));
        }
        if g.p(0.4) {
            v.extend(cmd!("COUNT", g.pick(&["1", "2", "10", "0", "x"])));
        }
        if g.p(0.3) {
            v.extend(cmd!("TYPE", g.pick(&["string", "hash", "list", "none", "bogus"])));
        }
        o.push(v)
    }),
    (1, |_, o| o.push(cmd!("RANDOMKEY"))),
    (1, |_, o| o.push(cmd!("DBSIZE"))),
    (2, |g, o| {
        let sub = g.pick(&["ENCODING", "REFCOUNT", "FREQ", "IDLETIME", "encoding", "BOGUS"]);
        o.push(cmd!("OBJECT", sub, g.key()))
    }),
    (1, |g, o| o.push(cmd!("DUMP", g.key()))),
];

// ---------------------------------------------------------------------------------------------
// hashes

pub const HASHES: &[(u32, Gen)] = &[
    (6, |g, o| {
        let name = g.pick(&["HSET", "HSET", "HMSET"]);
        let mut v = cmd!(name, g.hkey());
        for _ in 0..g.r.gen_range(1..4) {
            v.push(g.field());
            v.push(g.value());
        }
        if g.p(0.04) {
            v.pop();
        }
        o.push(v)
    }),
    (1, |g, o| o.push(cmd!("HSETNX", g.hkey(), g.field(), g.value()))),
    (4, |g, o| o.push(cmd!("HGET", g.hkey(), g.field()))),
    (2, |g, o| {
        let mut v = cmd!("HMGET", g.hkey());
        for _ in 0..g.r.gen_range(1..4) {
            v.push(g.field());
        }
        o.push(v)
    }),
    (2, |g, o| {
        let mut v = cmd!("HDEL", g.hkey());
        for _ in 0..g.r.gen_range(1..3) {
            v.push(g.field());
        }
        o.push(v)
    }),
    (3, |g, o| o.push(cmd!(g.pick(&["HLEN", "HKEYS", "HVALS", "HGETALL"]), g.hkey()))),
    (2, |g, o| o.push(cmd!(g.pick(&["HSTRLEN", "HEXISTS"]), g.hkey(), g.field()))),
    (2, |g, o| o.push(cmd!("HINCRBY", g.hkey(), g.field(), g.int_s()))),
    (2, |g, o| o.push(cmd!("HINCRBYFLOAT", g.hkey(), g.field(), g.float_s()))),
    (1, |g, o| {
        let mut v = cmd!("HRANDFIELD", g.hkey());
        if g.p(0.7) {
            v.push(g.pick(&["0", "1", "3", "10", "-1", "-5", "x"]).as_bytes().to_vec());
            if g.p(0.5) {
                v.push(b"WITHVALUES".to_vec());
            }
        }
        o.push(v)
    }),
    (1, |g, o| {
        let mut v = cmd!("HSCAN", g.hkey(), "0");
        if g.p(0.4) {
            v.extend(cmd!("MATCH", g.pick(&["*", "f*", "?", "f[0-1]"])));
        }
        if g.p(0.3) {
            v.extend(cmd!("COUNT", g.pick(&["1", "2", "10", "0"])));
        }
        o.push(v)
    }),
];

// ---------------------------------------------------------------------------------------------
// connection and server

pub const SERVER: &[(u32, Gen)] = &[
    (2, |g, o| if g.p(0.5) { o.push(cmd!("PING")) } else { o.push(cmd!("PING", g.value())) }),
    (1, |g, o| o.push(cmd!("ECHO", g.value()))),
    (2, |g, o| o.push(cmd!("SELECT", g.pick(&["0", "0", "0", "1", "16", "-1", "x"])))),
    (1, |_, o| o.push(cmd!("TIME"))),
    (1, |g, o| {
        if g.p(0.1) {
            o.push(cmd!("FLUSHALL"))
        } else if g.p(0.3) {
            o.push(cmd!("FLUSHDB"))
        } else {
            o.push(cmd!("DBSIZE"))
        }
    }),
    (1, |g, o| {
        o.push(cmd!(
            "CONFIG",
            "GET",
            g.pick(&["maxmemory-policy", "hash-max-listpack-entries", "hz", "nosuch", "maxmemory*"])
        ))
    }),
    (1, |g, o| o.push(cmd!("CONFIG", "SET", "hash-max-listpack-entries", g.pick(&["0", "2", "128", "x", "-1"])))),
    (1, |g, o| o.push(cmd!("CONFIG", "SET", "hash-max-listpack-value", g.pick(&["4", "64", "x"])))),
    (1, |g, o| {
        let cmds = ["GET", "SET", "HSET", "BITFIELD", "MGET", "EXPIRE", "LCS", "COPY", "OBJECT"];
        o.push(cmd!("COMMAND", "GETKEYS", g.pick(&cmds), g.key(), g.key(), g.key()))
    }),
    (1, |g, o| {
        o.push(cmd!(
            "COMMAND",
            "INFO",
            g.pick(&["get", "set", "hset", "bitfield", "nosuch", "object|encoding", "client|kill"])
        ))
    }),
    (1, |g, o| o.push(cmd!(g.pick(&["GETT", "OBJECT", "CLIENT", "CONFIG", "HGETALL", "ECHO"])))),
];

// ---------------------------------------------------------------------------------------------
// transactions

/// Generators whose replies are deterministic enough to appear inside MULTI/EXEC.
pub fn exact_gen(g: &mut G) -> Cmd {
    loop {
        let mut v = Vec::new();
        let fam = [STRINGS, BITS, HASHES, LISTS, SETS, ZSETS][g.r.gen_range(0..6)];
        let (_, f) = fam[g.r.gen_range(0..fam.len())];
        f(g, &mut v);
        if v.len() == 1 && rule(&v[0]) == Rule::Exact && lex_key(&v[0]).is_none() {
            return v.pop().unwrap();
        }
    }
}

pub const TRANSACTIONS: &[(u32, Gen)] = &[
    (3, |g, o| {
        if g.p(0.3) {
            o.push(cmd!("WATCH", g.key()));
        }
        o.push(cmd!("MULTI"));
        for _ in 0..g.r.gen_range(0..4) {
            let c = exact_gen(g);
            o.push(c);
        }
        if g.p(0.05) {
            o.push(cmd!("GET")); // a queueing error: EXEC answers EXECABORT
        }
        if g.p(0.05) {
            o.push(cmd!("MULTI"));
        }
        o.push(cmd!(if g.p(0.85) { "EXEC" } else { "DISCARD" }));
    }),
    (1, |g, o| o.push(cmd!(g.pick(&["EXEC", "DISCARD", "UNWATCH"])))),
];

// ---------------------------------------------------------------------------------------------
// pub/sub (no subscribers on the diff connection: counts only)

pub const PUBSUB: &[(u32, Gen)] = &[
    (2, |g, o| o.push(cmd!(g.pick(&["PUBLISH", "SPUBLISH"]), g.pick(&["ch", "news"]), g.value()))),
    (1, |g, o| {
        o.push(cmd!("PUBSUB", g.pick(&["CHANNELS", "NUMSUB", "NUMPAT", "SHARDCHANNELS", "SHARDNUMSUB", "BOGUS"])))
    }),
];
