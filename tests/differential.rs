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

use common::{Raw, Reply};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

type Cmd = Vec<Vec<u8>>;
/// A generator appends one or more commands (a MULTI block is several) to `out`.
type Gen = fn(&mut G, &mut Vec<Cmd>);

struct Family {
    name: &'static str,
    gens: &'static [(u32, Gen)],
}

/// The generator tables, one per command family. Weights are relative within a family; each
/// family is picked with probability proportional to the sum of its weights.
const FAMILIES: &[Family] = &[
    Family { name: "strings", gens: STRINGS },
    Family { name: "bits", gens: BITS },
    Family { name: "keys", gens: KEYS },
    Family { name: "hashes", gens: HASHES },
    Family { name: "connection+server", gens: SERVER },
    Family { name: "transactions", gens: TRANSACTIONS },
    Family { name: "pubsub", gens: PUBSUB },
    Family { name: "lists", gens: LISTS },
    Family { name: "sets", gens: SETS },
    Family { name: "zsets", gens: ZSETS },
    Family { name: "hll", gens: HLL },
    Family { name: "geo", gens: GEO },
    Family { name: "sort", gens: SORT },
    Family { name: "streams", gens: STREAMS },
    Family { name: "scripting", gens: SCRIPTING },
];

/// Generation context: the rng plus the vocabulary (small, so commands collide).
struct G {
    r: SmallRng,
    now_s: u64,
    /// Stream ids handed to XADD grow with this counter, so that most XADDs succeed.
    xseq: u64,
}

const KEYSPACE: &[&str] = &["a", "b", "c", "d", "h1", "h2", "{t}x", "n"];
const FIELDS: &[&str] = &["f0", "f1", "f2", "f3", "10"];

impl G {
    fn p(&mut self, prob: f64) -> bool {
        self.r.gen_bool(prob)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.r.gen_range(0..xs.len())]
    }
    fn key(&mut self) -> Vec<u8> {
        self.pick(KEYSPACE).as_bytes().to_vec()
    }
    fn hkey(&mut self) -> Vec<u8> {
        // Hash commands mostly use hash keys so they build something, but may hit any key.
        if self.p(0.8) {
            self.pick(&["h1", "h2"]).as_bytes().to_vec()
        } else {
            self.key()
        }
    }
    fn field(&mut self) -> Vec<u8> {
        self.pick(FIELDS).as_bytes().to_vec()
    }
    fn int(&mut self) -> i64 {
        match self.r.gen_range(0..10) {
            0 => i64::MAX,
            1 => i64::MIN,
            2 => self.r.gen_range(-1000..1000),
            3 => self.r.gen_range(-(1i64 << 40)..(1i64 << 40)),
            _ => self.r.gen_range(-10..30),
        }
    }
    fn int_s(&mut self) -> Vec<u8> {
        if self.p(0.05) {
            return self
                .pick(&["x", "1.5", "", " 1", "1 ", "+1", "0x10", "99999999999999999999", "-0", "007"])
                .as_bytes()
                .to_vec();
        }
        self.int().to_string().into_bytes()
    }
    fn float_s(&mut self) -> Vec<u8> {
        self.pick(&[
            "0",
            "1",
            "-1",
            "1.5",
            "-2.25",
            "0.1",
            "3.0e3",
            "1e-5",
            "10.5",
            "5.0e3",
            "abc",
            "inf",
            "-inf",
            "nan",
            "",
            "1.7976931348623157e308",
            "17976931348623157e292",
            "0.3",
            "-0",
            "1e400",
            " 1",
            "0x1p3",
        ])
        .as_bytes()
        .to_vec()
    }
    fn value(&mut self) -> Vec<u8> {
        match self.r.gen_range(0..14) {
            0 => Vec::new(),
            1 => self.int().to_string().into_bytes(),
            2 => self.r.gen_range(0..100).to_string().into_bytes(),
            3 => self.float_s(),
            4 => b"hello world".to_vec(),
            5 => vec![0u8, 0xff, b'\r', b'\n', 0x80],
            6 => {
                let n = self.r.gen_range(20..80);
                (0..n).map(|i| b'a' + (i % 26) as u8).collect()
            }
            7 => "x".repeat(self.r.gen_range(1..5)).into_bytes(),
            8 => b"9223372036854775807".to_vec(),
            9 => b"-9223372036854775808".to_vec(),
            _ => self.pick(&["foo", "bar", "baz", "ohmytext", "mynewtext"]).as_bytes().to_vec(),
        }
    }
    /// A relative expiry in seconds: large (deterministic TTL reads), zero or negative.
    fn secs(&mut self) -> Vec<u8> {
        match self.r.gen_range(0..12) {
            0 => b"0".to_vec(),
            1 => b"-5".to_vec(),
            2 => b"x".to_vec(),
            3 => b"9223372036854775807".to_vec(),
            4 => b"99999999999999".to_vec(),
            _ => self.r.gen_range(100..100000).to_string().into_bytes(),
        }
    }
    /// A relative expiry in milliseconds: like `secs`, scaled so keys do not expire during a run.
    fn millis(&mut self) -> Vec<u8> {
        let mut s = self.secs();
        if s.len() > 1 && s[0].is_ascii_digit() && s.len() < 10 {
            s.extend_from_slice(b"000");
        }
        s
    }
    /// A future absolute time in seconds (SET/GETEX EXAT with a past time stores a logically
    /// expired key whose reclaiming by the active expiry cycle is timing-dependent).
    fn future_secs(&mut self) -> Vec<u8> {
        (self.now_s + self.r.gen_range(100..100000)).to_string().into_bytes()
    }
    fn abs_secs(&mut self) -> Vec<u8> {
        match self.r.gen_range(0..6) {
            0 => b"1".to_vec(),
            1 => b"-1".to_vec(),
            _ => (self.now_s + self.r.gen_range(100..100000)).to_string().into_bytes(),
        }
    }
    fn idx(&mut self) -> Vec<u8> {
        match self.r.gen_range(0..10) {
            0 => b"-1".to_vec(),
            1 => self.r.gen_range(-100..0).to_string().into_bytes(),
            2 => b"9223372036854775807".to_vec(),
            3 => b"-9223372036854775808".to_vec(),
            4 => b"x".to_vec(),
            _ => self.r.gen_range(0..40).to_string().into_bytes(),
        }
    }
}

macro_rules! cmd {
    ($($e:expr),* $(,)?) => {{
        let v: Cmd = vec![$(AsRef::<[u8]>::as_ref(&$e).to_vec()),*];
        v
    }};
}

// ---------------------------------------------------------------------------------------------
// strings

const STRINGS: &[(u32, Gen)] = &[
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

fn gen_set(g: &mut G, o: &mut Vec<Cmd>) {
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

fn gen_getex(g: &mut G, o: &mut Vec<Cmd>) {
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

const BITS: &[(u32, Gen)] = &[
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

const KEYS: &[(u32, Gen)] = &[
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

const HASHES: &[(u32, Gen)] = &[
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

const SERVER: &[(u32, Gen)] = &[
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
fn exact_gen(g: &mut G) -> Cmd {
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

const TRANSACTIONS: &[(u32, Gen)] = &[
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

const PUBSUB: &[(u32, Gen)] = &[
    (2, |g, o| o.push(cmd!(g.pick(&["PUBLISH", "SPUBLISH"]), g.pick(&["ch", "news"]), g.value()))),
    (1, |g, o| {
        o.push(cmd!("PUBSUB", g.pick(&["CHANNELS", "NUMSUB", "NUMPAT", "SHARDCHANNELS", "SHARDNUMSUB", "BOGUS"])))
    }),
];

// ---------------------------------------------------------------------------------------------
// part 2 vocabulary: typed keys (mostly of the family's type, sometimes any key, so that
// WRONGTYPE paths are exercised) and small element sets (so that commands collide).

const LKEYS: &[&str] = &["l1", "l2", "l3"];
const SKEYS: &[&str] = &["s1", "s2", "s3"];
const ZKEYS: &[&str] = &["z1", "z2", "z3"];
const XKEYS: &[&str] = &["x1", "x2"];
const GKEYS: &[&str] = &["g1", "g2"];
const PKEYS: &[&str] = &["p1", "p2"];
const ALLKEYS2: &[&[&str]] = &[KEYSPACE, LKEYS, SKEYS, ZKEYS, XKEYS, GKEYS, PKEYS];

impl G {
    /// A key of the given family (90%) or any key of any family.
    fn tk(&mut self, keys: &[&str]) -> Vec<u8> {
        if self.p(0.9) {
            self.pick(keys).as_bytes().to_vec()
        } else {
            self.anykey()
        }
    }
    fn anykey(&mut self) -> Vec<u8> {
        let fam = ALLKEYS2[self.r.gen_range(0..ALLKEYS2.len())];
        self.pick(fam).as_bytes().to_vec()
    }
    /// A list/set element: mostly small, often integers (intset), sometimes anything.
    fn elem(&mut self) -> Vec<u8> {
        match self.r.gen_range(0..12) {
            0..=3 => self.pick(&["a", "b", "c", "d", "e"]).as_bytes().to_vec(),
            4..=7 => self.pick(&["1", "2", "3", "10", "-5", "100", "007", "9223372036854775807"]).as_bytes().to_vec(),
            8 => self.value(),
            _ => self.r.gen_range(0..40).to_string().into_bytes(),
        }
    }
    fn count_s(&mut self) -> Vec<u8> {
        self.pick(&["0", "1", "2", "3", "5", "100", "-1", "-3", "x"]).as_bytes().to_vec()
    }
    fn small_idx(&mut self) -> Vec<u8> {
        match self.r.gen_range(0..10) {
            0 => self.idx(),
            _ => self.r.gen_range(-6..8).to_string().into_bytes(),
        }
    }
    fn score(&mut self) -> Vec<u8> {
        match self.r.gen_range(0..14) {
            0 => self.float_s(),
            1 => self.pick(&["inf", "-inf", "+inf", "1e3", "0.5"]).as_bytes().to_vec(),
            _ => self.r.gen_range(-3..6).to_string().into_bytes(),
        }
    }
    fn zmember(&mut self) -> Vec<u8> {
        match self.r.gen_range(0..10) {
            0 => self.elem(),
            _ => self.pick(&["a", "b", "c", "d", "e", "f", "1", "2"]).as_bytes().to_vec(),
        }
    }
    fn score_bound(&mut self) -> Vec<u8> {
        match self.r.gen_range(0..12) {
            0 => b"-inf".to_vec(),
            1 => b"+inf".to_vec(),
            2 => b"inf".to_vec(),
            3 => b"x".to_vec(),
            4 | 5 => format!("({}", self.r.gen_range(-3..6)).into_bytes(),
            6 => b"(".to_vec(),
            _ => self.r.gen_range(-3..6).to_string().into_bytes(),
        }
    }
    fn lex_bound(&mut self) -> Vec<u8> {
        match self.r.gen_range(0..10) {
            0 => b"-".to_vec(),
            1 => b"+".to_vec(),
            2 => b"x".to_vec(),
            3..=5 => format!("({}", self.pick(&["a", "b", "c", "d", "1"])).into_bytes(),
            _ => format!("[{}", self.pick(&["a", "b", "c", "d", "1", ""])).into_bytes(),
        }
    }
    /// A blocking timeout: tiny (the blocked path) or large (only used with data present is not
    /// guaranteed, so large ones are rare and always short enough to bound the run).
    fn btimeout(&mut self) -> Vec<u8> {
        self.pick(&["0.01", "0.01", "0.01", "0.02", "-1", "x", "0.001"]).as_bytes().to_vec()
    }
    fn numkeys(&mut self, keys: &[&str], out: &mut Cmd) {
        let n = self.r.gen_range(1..4);
        if self.p(0.04) {
            out.push(self.pick(&["0", "-1", "x", "5"]).as_bytes().to_vec());
        } else {
            out.push(n.to_string().into_bytes());
        }
        for _ in 0..n {
            let k = self.tk(keys);
            out.push(k);
        }
    }
    /// An id near the ones XADD has been using (for XDEL/XACK/XCLAIM, ranges).
    fn stream_id(&mut self) -> Vec<u8> {
        let top = self.xseq / 3 + 2;
        match self.r.gen_range(0..20) {
            0 => b"0-0".to_vec(),
            1 => b"x".to_vec(),
            2 => format!("{}", self.r.gen_range(0..top)).into_bytes(),
            3 => format!("{}-*", self.r.gen_range(0..top)).into_bytes(),
            _ => format!("{}-{}", self.r.gen_range(0..top), self.r.gen_range(0..3)).into_bytes(),
        }
    }
    /// The id for XADD: mostly the next one of a growing sequence, sometimes an old one.
    fn xadd_id(&mut self) -> Vec<u8> {
        self.xseq += 1;
        match self.r.gen_range(0..40) {
            0 => b"*".to_vec(),
            1 => b"18446744073709551615-18446744073709551615".to_vec(),
            2..=5 => self.stream_id(),
            6..=9 => format!("{}-*", self.xseq / 3).into_bytes(),
            10 => format!("{}", self.xseq / 3).into_bytes(),
            _ => format!("{}-{}", self.xseq / 3, self.xseq % 3).into_bytes(),
        }
    }
    fn range_id(&mut self) -> Vec<u8> {
        let top = self.xseq / 3 + 2;
        match self.r.gen_range(0..10) {
            0 => b"-".to_vec(),
            1 => b"+".to_vec(),
            2 => format!("({}-{}", self.r.gen_range(0..top), self.r.gen_range(0..3)).into_bytes(),
            3 => format!("{}", self.r.gen_range(0..top)).into_bytes(),
            4 => b"x".to_vec(),
            _ => format!("{}-{}", self.r.gen_range(0..top), self.r.gen_range(0..4)).into_bytes(),
        }
    }
    fn group(&mut self) -> Vec<u8> {
        self.pick(&["g1", "g1", "g1", "g2", "g2", "nogroup"]).as_bytes().to_vec()
    }
    fn consumer(&mut self) -> Vec<u8> {
        self.pick(&["c1", "c2", "c3"]).as_bytes().to_vec()
    }
    fn lonlat(&mut self) -> (Vec<u8>, Vec<u8>) {
        if self.p(0.04) {
            return (
                self.pick(&["200", "x", "-180.1", "180"]).as_bytes().to_vec(),
                self.pick(&["86", "0", "-85.06", "x"]).as_bytes().to_vec(),
            );
        }
        let lon = 13.0 + self.r.gen_range(0..30000) as f64 / 10000.0;
        let lat = 37.0 + self.r.gen_range(0..20000) as f64 / 10000.0;
        (format!("{:.4}", lon).into_bytes(), format!("{:.4}", lat).into_bytes())
    }
    fn gmember(&mut self) -> Vec<u8> {
        self.pick(&["Palermo", "Catania", "m1", "m2", "m3", "m4", "a"]).as_bytes().to_vec()
    }
    fn unit(&mut self) -> Vec<u8> {
        self.pick(&["m", "km", "mi", "ft", "KM", "yd"]).as_bytes().to_vec()
    }
    fn radius(&mut self) -> Vec<u8> {
        self.pick(&["10", "50", "100", "200", "500", "0", "-1", "x", "150.5"]).as_bytes().to_vec()
    }
}

// ---------------------------------------------------------------------------------------------
// lists

const LISTS: &[(u32, Gen)] = &[
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

const SETS: &[(u32, Gen)] = &[
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

fn zrange_opts(g: &mut G, v: &mut Cmd, by: Option<&str>, allow_withscores: bool) {
    if g.p(0.3) && by.is_some() {
        v.extend(cmd!("LIMIT", g.pick(&["0", "1", "2", "-1", "x"]), g.pick(&["1", "2", "-1", "0", "10"])));
    }
    if allow_withscores && g.p(0.4) {
        v.push(b"WITHSCORES".to_vec());
    }
}

fn gen_zrange(g: &mut G, o: &mut Vec<Cmd>) {
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

fn gen_zsetop(g: &mut G, o: &mut Vec<Cmd>) {
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

const ZSETS: &[(u32, Gen)] = &[
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

const HLL: &[(u32, Gen)] = &[
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

// ---------------------------------------------------------------------------------------------
// geo

fn gen_geosearch(g: &mut G, o: &mut Vec<Cmd>) {
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

fn geo_opts(g: &mut G, v: &mut Cmd, store: bool) {
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

fn gen_georadius(g: &mut G, o: &mut Vec<Cmd>) {
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

const GEO: &[(u32, Gen)] = &[
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

const SORT: &[(u32, Gen)] = &[(1, gen_sort)];

fn gen_sort(g: &mut G, o: &mut Vec<Cmd>) {
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

fn fields(g: &mut G, v: &mut Cmd) {
    for _ in 0..g.r.gen_range(1..3) {
        v.push(g.pick(&["f", "g", "name"]).as_bytes().to_vec());
        v.push(g.elem());
    }
}

fn trim_opts(g: &mut G, v: &mut Cmd, required: bool) {
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

const STREAMS: &[(u32, Gen)] = &[
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

const SCRIPTS: &[(&str, usize)] = &[
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

const SCRIPTING: &[(u32, Gen)] = &[(1, |g, o| {
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

// ---------------------------------------------------------------------------------------------
// normalisation

#[derive(Clone, Copy, Debug, PartialEq)]
enum Rule {
    Exact,
    /// Only the reply's shape (types and array lengths).
    Shape,
    /// An integer compared within a tolerance (TTL-like clocks); negatives exactly.
    Approx(i64),
    /// An array compared as a multiset.
    Sorted,
    /// A flat array of pairs compared as a multiset of pairs (CONFIG GET with a glob).
    SortedPairs,
    /// HKEYS/HVALS/HGETALL: exact for listpack-encoded hashes (insertion order, like Redis),
    /// as a multiset for hashtable-encoded ones (whose order is Redis's dict order).
    HashOrder,
    /// A full SCAN-family iteration; the union of elements is compared.
    Scan,
    /// SRANDMEMBER/ZRANDMEMBER: the reply's shape, and whether every element returned is a
    /// member (with its score) of the key on that server, and distinct when it must be.
    RandMember,
    /// SPOP: the count is compared, then ferrocache's set is repaired to Redis's (see the loop).
    Spop,
    /// Streams: pending-entry idle times and delivery/seen timestamps are masked.
    StreamTimes,
}

fn upper(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_ascii_uppercase()
}

fn rule(cmd: &Cmd) -> Rule {
    let name = upper(&cmd[0]);
    let sub = cmd.get(1).map(|s| upper(s)).unwrap_or_default();
    match name.as_str() {
        "RANDOMKEY" | "TIME" | "HRANDFIELD" => Rule::Shape,
        "TTL" | "EXPIRETIME" => Rule::Approx(2),
        "PTTL" | "PEXPIRETIME" => Rule::Approx(2000),
        "KEYS" => Rule::Sorted,
        "CONFIG" if sub == "GET" => Rule::SortedPairs,
        "HKEYS" | "HVALS" => Rule::HashOrder,
        "HGETALL" | "DUMP" => Rule::HashOrder,
        "SCAN" | "HSCAN" | "SSCAN" | "ZSCAN" => Rule::Scan,
        "SMEMBERS" | "SINTER" | "SUNION" | "SDIFF" => Rule::Sorted,
        "SRANDMEMBER" | "ZRANDMEMBER" => Rule::RandMember,
        "SPOP" => Rule::Spop,
        "XPENDING" | "XINFO" => Rule::StreamTimes,
        "SORT" | "SORT_RO" if sort_unordered(cmd) => Rule::Sorted,
        "GEOSEARCH" | "GEORADIUS" | "GEORADIUS_RO" | "GEORADIUSBYMEMBER" | "GEORADIUSBYMEMBER_RO" => geo_rule(cmd),
        "OBJECT" if sub == "FREQ" || sub == "IDLETIME" => Rule::Shape,
        "EXEC" => Rule::Exact,
        _ => Rule::Exact,
    }
}

fn has_arg(cmd: &Cmd, a: &str) -> bool {
    cmd.iter().skip(1).any(|x| x.eq_ignore_ascii_case(a.as_bytes()))
}

/// SORT whose order Redis leaves to its input order (BY nosort / a constant pattern, which on a
/// set is the set's own order) or to an unstable sort (ALPHA by a pattern: equal or missing
/// weights compare equal): compared as a multiset.
fn sort_unordered(cmd: &Cmd) -> bool {
    let by = cmd.iter().position(|x| x.eq_ignore_ascii_case(b"BY")).and_then(|i| cmd.get(i + 1));
    match by {
        Some(p) => !p.contains(&b'*') || has_arg(cmd, "ALPHA") || p.starts_with(b"nosuch"),
        None => false,
    }
}

/// GEOSEARCH/GEORADIUS: without ASC/DESC (and without COUNT, which implies ASC) the order is the
/// geohash-box scan order; with ANY the subset found is scan-order dependent.
fn geo_rule(cmd: &Cmd) -> Rule {
    if has_arg(cmd, "ANY") {
        Rule::Shape
    } else if !has_arg(cmd, "ASC") && !has_arg(cmd, "DESC") && !has_arg(cmd, "COUNT") {
        Rule::Sorted
    } else {
        Rule::Exact
    }
}

/// Stream ids generated from the clock (`*`) differ between the servers: masked everywhere.
fn mask_auto_ids(r: Reply) -> Reply {
    match r {
        Reply::Bulk(b) => {
            let s = &b[..];
            if let Some(d) = s.iter().position(|&c| c == b'-') {
                if d >= 12
                    && s[..d].iter().all(u8::is_ascii_digit)
                    && s[d + 1..].iter().all(u8::is_ascii_digit)
                    && d + 1 < s.len()
                {
                    return Reply::Bulk(b"<auto-id>".to_vec());
                }
            }
            Reply::Bulk(b)
        }
        Reply::Array(v) => Reply::Array(v.into_iter().map(mask_auto_ids).collect()),
        other => other,
    }
}

/// XINFO/XPENDING: idle times, seen/active times and delivery timestamps masked.
fn mask_stream_times(cmd: &Cmd, r: Reply) -> Reply {
    fn walk(r: Reply, xpending_entry: bool) -> Reply {
        match r {
            Reply::Int(i) if i >= 1_000_000_000_000 => Reply::Int(-777),
            Reply::Array(v) => {
                let is_pending_entry = xpending_entry && v.len() == 4 && matches!(v[2], Reply::Int(_));
                let mut out = Vec::with_capacity(v.len());
                let mut mask_next = false;
                for (i, x) in v.into_iter().enumerate() {
                    if mask_next || (is_pending_entry && i == 2) {
                        out.push(Reply::Int(-777));
                        mask_next = false;
                        continue;
                    }
                    if let Reply::Bulk(k) = &x {
                        mask_next = matches!(k.as_slice(), b"idle" | b"seen-time" | b"active-time" | b"inactive");
                    }
                    out.push(walk(x, xpending_entry));
                }
                Reply::Array(out)
            }
            other => other,
        }
    }
    let xpending_ext = upper(&cmd[0]) == "XPENDING" && cmd.len() > 3;
    match r {
        Reply::Array(v) if xpending_ext => Reply::Array(v.into_iter().map(|e| walk(e, true)).collect()),
        other => walk(other, false),
    }
}

/// SRANDMEMBER/ZRANDMEMBER: shape plus membership checks against the key's current members.
fn rand_member(conn: &mut Raw, cmd: &Cmd, r: Reply) -> Reply {
    let z = upper(&cmd[0]) == "ZRANDMEMBER";
    let withscores = z && has_arg(cmd, "WITHSCORES");
    let items: Vec<Reply> = match &r {
        Reply::Bulk(_) => vec![r.clone()],
        Reply::Array(v) => v.clone(),
        _ => return r,
    };
    let all = if z {
        conn.cmd(&[b"ZRANGE".as_slice(), &cmd[1], b"0", b"-1", b"WITHSCORES"])
    } else {
        conn.cmd(&[b"SMEMBERS".as_slice(), &cmd[1]])
    };
    let all = match all {
        Reply::Array(v) => v,
        _ => Vec::new(),
    };
    let units: Vec<Vec<Reply>> = if withscores {
        items.chunks(2).map(|c| c.to_vec()).collect()
    } else {
        items.iter().map(|x| vec![x.clone()]).collect()
    };
    let members: Vec<Vec<Reply>> = if z {
        if withscores {
            all.chunks(2).map(|c| c.to_vec()).collect()
        } else {
            all.chunks(2).map(|c| vec![c[0].clone()]).collect()
        }
    } else {
        all.iter().map(|x| vec![x.clone()]).collect()
    };
    let all_members = units.iter().all(|u| members.contains(u));
    let count_pos = cmd
        .get(2)
        .and_then(|c| std::str::from_utf8(c).ok())
        .and_then(|c| c.parse::<i64>().ok())
        .is_some_and(|c| c >= 0);
    let mut distinct = true;
    if count_pos {
        let mut seen = Vec::new();
        for u in &units {
            if seen.contains(u) {
                distinct = false;
            }
            seen.push(u.clone());
        }
    }
    Reply::Array(vec![shape(&r), Reply::Bool(all_members), Reply::Bool(distinct)])
}

fn shape(r: &Reply) -> Reply {
    match r {
        Reply::Bulk(_) => Reply::Bulk(b"<bulk>".to_vec()),
        Reply::Int(_) => Reply::Int(0),
        Reply::Array(v) => Reply::Array(v.iter().map(shape).collect()),
        other => other.clone(),
    }
}

fn sorted(r: &Reply) -> Reply {
    match r {
        Reply::Array(v) => {
            let mut v = v.clone();
            v.sort_by(|a, b| format!("{:?}", a).cmp(&format!("{:?}", b)));
            Reply::Array(v)
        }
        other => other.clone(),
    }
}

/// Run one command on one connection and return its normalised reply.
fn run(conn: &mut Raw, cmd: &Cmd, in_multi: bool) -> Reply {
    let rule = if in_multi { Rule::Exact } else { rule(cmd) };
    if rule == Rule::Scan {
        return scan_all(conn, cmd);
    }
    let mut hashtable = false;
    if rule == Rule::HashOrder && cmd.len() == 2 {
        let enc = conn.cmd(&[b"OBJECT".as_slice(), b"ENCODING", &cmd[1]]);
        hashtable = enc == Reply::Bulk(b"hashtable".to_vec());
    }
    conn.send_cmd(cmd);
    let r = mask_auto_ids(conn.read());
    match rule {
        Rule::Shape => shape(&r),
        Rule::RandMember => rand_member(conn, cmd, r),
        Rule::StreamTimes => mask_stream_times(cmd, r),
        Rule::Spop => r,
        Rule::Sorted => sorted(&r),
        Rule::SortedPairs => sorted_pairs(&r),
        Rule::HashOrder if hashtable => {
            if upper(&cmd[0]) == "DUMP" {
                shape(&r)
            } else if upper(&cmd[0]) == "HGETALL" {
                sorted_pairs(&r)
            } else {
                sorted(&r)
            }
        }
        _ => {
            let name = upper(&cmd[0]);
            let sub = cmd.get(1).map(|s| upper(s)).unwrap_or_default();
            if name == "OBJECT" && sub == "ENCODING" && matches!(r.as_bytes(), Some(b"int" | b"embstr" | b"raw")) {
                // String encodings are not tracked like Redis's (see README): class only.
                Reply::Bulk(b"<string encoding>".to_vec())
            } else if name == "OBJECT" && sub == "REFCOUNT" && matches!(r, Reply::Int(_)) {
                shape(&r)
            } else {
                r
            }
        }
    }
}

/// Compare two normalised replies under the command's rule.
fn same(cmd: &Cmd, in_multi: bool, a: &Reply, b: &Reply) -> bool {
    match (if in_multi { Rule::Exact } else { rule(cmd) }, a, b) {
        (Rule::Spop, Reply::Array(x), Reply::Array(y)) => x.len() == y.len(),
        (Rule::Spop, Reply::Bulk(_), Reply::Bulk(_)) => true,
        (Rule::Approx(tol), Reply::Int(x), Reply::Int(y)) if *x >= 0 && *y >= 0 => (x - y).abs() <= tol,
        _ => a == b,
    }
}

fn sorted_pairs(r: &Reply) -> Reply {
    match r {
        Reply::Array(v) => {
            let mut p: Vec<Reply> = v.chunks(2).map(|c| Reply::Array(c.to_vec())).collect();
            p.sort_by(|a, b| format!("{:?}", a).cmp(&format!("{:?}", b)));
            Reply::Array(p)
        }
        other => other.clone(),
    }
}

fn scan_all(conn: &mut Raw, cmd: &Cmd) -> Reply {
    let cur_pos = if upper(&cmd[0]) == "SCAN" { 1 } else { 2 };
    let pairs = matches!(upper(&cmd[0]).as_str(), "HSCAN" | "ZSCAN");
    let mut cmd = cmd.clone();
    let mut all = Vec::new();
    for _ in 0..10_000 {
        conn.send_cmd(&cmd);
        let r = conn.read();
        let Reply::Array(v) = &r else { return r };
        let (Some(Reply::Bulk(cur)), Some(Reply::Array(items))) = (v.first(), v.get(1)) else {
            return r;
        };
        if pairs {
            // HSCAN/ZSCAN: field/value (member/score) pairs
            for p in items.chunks(2) {
                all.push(Reply::Array(p.to_vec()));
            }
        } else {
            all.extend(items.iter().cloned());
        }
        if cur.as_slice() == b"0" {
            break;
        }
        cmd[cur_pos] = cur.clone();
    }
    all.sort_by(|a, b| format!("{:?}", a).cmp(&format!("{:?}", b)));
    all.dedup();
    Reply::Array(all)
}

fn show(cmd: &Cmd) -> String {
    cmd.iter()
        .map(|a| {
            let s = String::from_utf8_lossy(a);
            if a.is_empty() || a.iter().any(|&b| b <= b' ' || b >= 0x7f || b == b'"') {
                format!("{:?}", s)
            } else {
                s.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Lex range commands on a sorted set whose scores are not all equal have an unspecified
/// result (Redis's answer depends on its skiplist levels or listpack scan).
fn lex_key(cmd: &Cmd) -> Option<&[u8]> {
    if cmd.len() < 3 {
        return None;
    }
    match upper(&cmd[0]).as_str() {
        "ZRANGEBYLEX" | "ZREVRANGEBYLEX" | "ZLEXCOUNT" | "ZREMRANGEBYLEX" => Some(&cmd[1]),
        "ZRANGE" if has_arg(cmd, "BYLEX") => Some(&cmd[1]),
        "ZRANGESTORE" if has_arg(cmd, "BYLEX") => Some(&cmd[2]),
        _ => None,
    }
}

fn lex_unspecified(redis: &mut Raw, cmd: &Cmd) -> bool {
    let Some(key) = lex_key(cmd) else { return false };
    match redis.cmd(&[b"ZRANGE".as_slice(), key, b"0", b"-1", b"WITHSCORES"]) {
        Reply::Array(v) => {
            let scores: Vec<&Reply> = v.iter().skip(1).step_by(2).collect();
            scores.windows(2).any(|w| w[0] != w[1])
        }
        _ => false,
    }
}

/// After SPOP popped different random members on the two servers, put ferrocache's set back in
/// Redis's state (re-add what only it popped, remove what only Redis popped) and check that the
/// sets are then equal (which also checks that ferrocache popped actual members).
fn spop_repair(a: &mut Raw, b: &mut Raw, key: &[u8], ra: &Reply, rb: &Reply) -> bool {
    let list = |r: &Reply| -> Vec<Vec<u8>> {
        match r {
            Reply::Bulk(x) => vec![x.clone()],
            Reply::Array(v) => v.iter().filter_map(|x| x.as_bytes().map(|b| b.to_vec())).collect(),
            _ => Vec::new(),
        }
    };
    let (fa, fb) = (list(ra), list(rb));
    if fa == fb {
        return true;
    }
    let readd: Vec<&Vec<u8>> = fa.iter().filter(|x| !fb.contains(x)).collect();
    let rem: Vec<&Vec<u8>> = fb.iter().filter(|x| !fa.contains(x)).collect();
    if !readd.is_empty() {
        let mut c: Cmd = vec![b"SADD".to_vec(), key.to_vec()];
        c.extend(readd.into_iter().cloned());
        a.cmd(&c);
    }
    if !rem.is_empty() {
        let mut c: Cmd = vec![b"SREM".to_vec(), key.to_vec()];
        c.extend(rem.into_iter().cloned());
        a.cmd(&c);
    }
    let sa = sorted(&a.cmd(&[b"SMEMBERS".as_slice(), key]));
    let sb = sorted(&b.cmd(&[b"SMEMBERS".as_slice(), key]));
    if sa != sb {
        eprintln!("SPOP repair: sets differ: ferrocache {:?} redis {:?}", sa, sb);
        return false;
    }
    // Redis rebuilds the set when few members remain (intset again if they are all integers):
    // the encoding follows the members each server kept, so if it now differs, drop the key.
    let enc = [b"OBJECT".as_slice(), b"ENCODING", key];
    if a.cmd(&enc) != b.cmd(&enc) {
        a.cmd(&[b"DEL".as_slice(), key]);
        b.cmd(&[b"DEL".as_slice(), key]);
    }
    true
}

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
