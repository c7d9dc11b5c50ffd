//! The differential test's command generator and comparison rules (tests/differential.rs):
//! the generation context and vocabulary here, one table of weighted generators per command
//! family in `gen_*.rs` (listed in `FAMILIES`), the normalisation of replies that must differ
//! (randomness, clocks, ids, hash-table orders) in `compare.rs`. Included with
//! `#[path = "common/differential/mod.rs"] mod diff;` (next to `mod common;`).
//!
//! Other command families plug in by adding a `Family` (a name and a table of weighted generator
//! functions) to `FAMILIES`, and, where their replies are not deterministic, a rule in
//! `compare.rs`.

use rand::rngs::SmallRng;
use rand::Rng;

pub type Cmd = Vec<Vec<u8>>;

/// A generator appends one or more commands (a MULTI block is several) to `out`.
pub type Gen = fn(&mut G, &mut Vec<Cmd>);

pub struct Family {
    pub name: &'static str,
    pub gens: &'static [(u32, Gen)],
}

/// The generator tables, one per command family. Weights are relative within a family; each
/// family is picked with probability proportional to the sum of its weights.
pub const FAMILIES: &[Family] = &[
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
pub struct G {
    pub r: SmallRng,
    pub now_s: u64,
    /// Stream ids handed to XADD grow with this counter, so that most XADDs succeed.
    pub xseq: u64,
}

pub const KEYSPACE: &[&str] = &["a", "b", "c", "d", "h1", "h2", "{t}x", "n"];

pub const FIELDS: &[&str] = &["f0", "f1", "f2", "f3", "10"];

impl G {
    pub fn p(&mut self, prob: f64) -> bool {
        self.r.gen_bool(prob)
    }
    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.r.gen_range(0..xs.len())]
    }
    pub fn key(&mut self) -> Vec<u8> {
        self.pick(KEYSPACE).as_bytes().to_vec()
    }
    pub fn hkey(&mut self) -> Vec<u8> {
        // Hash commands mostly use hash keys so they build something, but may hit any key.
        if self.p(0.8) {
            self.pick(&["h1", "h2"]).as_bytes().to_vec()
        } else {
            self.key()
        }
    }
    pub fn field(&mut self) -> Vec<u8> {
        self.pick(FIELDS).as_bytes().to_vec()
    }
    pub fn int(&mut self) -> i64 {
        match self.r.gen_range(0..10) {
            0 => i64::MAX,
            1 => i64::MIN,
            2 => self.r.gen_range(-1000..1000),
            3 => self.r.gen_range(-(1i64 << 40)..(1i64 << 40)),
            _ => self.r.gen_range(-10..30),
        }
    }
    pub fn int_s(&mut self) -> Vec<u8> {
        if self.p(0.05) {
            return self
                .pick(&["x", "1.5", "", " 1", "1 ", "+1", "0x10", "99999999999999999999", "-0", "007"])
                .as_bytes()
                .to_vec();
        }
        self.int().to_string().into_bytes()
    }
    pub fn float_s(&mut self) -> Vec<u8> {
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
    pub fn value(&mut self) -> Vec<u8> {
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
    pub fn secs(&mut self) -> Vec<u8> {
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
    pub fn millis(&mut self) -> Vec<u8> {
        let mut s = self.secs();
        if s.len() > 1 && s[0].is_ascii_digit() && s.len() < 10 {
            s.extend_from_slice(b"000");
        }
        s
    }
    /// A future absolute time in seconds (SET/GETEX EXAT with a past time stores a logically
    /// expired key whose reclaiming by the active expiry cycle is timing-dependent).
    pub fn future_secs(&mut self) -> Vec<u8> {
        (self.now_s + self.r.gen_range(100..100000)).to_string().into_bytes()
    }
    pub fn abs_secs(&mut self) -> Vec<u8> {
        match self.r.gen_range(0..6) {
            0 => b"1".to_vec(),
            1 => b"-1".to_vec(),
            _ => (self.now_s + self.r.gen_range(100..100000)).to_string().into_bytes(),
        }
    }
    pub fn idx(&mut self) -> Vec<u8> {
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

mod compare;
mod gen_collections;
mod gen_core;
mod gen_geo_streams;

pub use compare::*;
use gen_collections::*;
use gen_core::*;
use gen_geo_streams::*;

// ---------------------------------------------------------------------------------------------
// part 2 vocabulary: typed keys (mostly of the family's type, sometimes any key, so that
// WRONGTYPE paths are exercised) and small element sets (so that commands collide).

pub const LKEYS: &[&str] = &["l1", "l2", "l3"];

pub const SKEYS: &[&str] = &["s1", "s2", "s3"];

pub const ZKEYS: &[&str] = &["z1", "z2", "z3"];

pub const XKEYS: &[&str] = &["x1", "x2"];

pub const GKEYS: &[&str] = &["g1", "g2"];

pub const PKEYS: &[&str] = &["p1", "p2"];

pub const ALLKEYS2: &[&[&str]] = &[KEYSPACE, LKEYS, SKEYS, ZKEYS, XKEYS, GKEYS, PKEYS];

impl G {
    /// A key of the given family (90%) or any key of any family.
    pub fn tk(&mut self, keys: &[&str]) -> Vec<u8> {
        if self.p(0.9) {
            self.pick(keys).as_bytes().to_vec()
        } else {
            self.anykey()
        }
    }
    pub fn anykey(&mut self) -> Vec<u8> {
        let fam = ALLKEYS2[self.r.gen_range(0..ALLKEYS2.len())];
        self.pick(fam).as_bytes().to_vec()
    }
    /// A list/set element: mostly small, often integers (intset), sometimes anything.
    pub fn elem(&mut self) -> Vec<u8> {
        match self.r.gen_range(0..12) {
            0..=3 => self.pick(&["a", "b", "c", "d", "e"]).as_bytes().to_vec(),
            4..=7 => self.pick(&["1", "2", "3", "10", "-5", "100", "007", "9223372036854775807"]).as_bytes().to_vec(),
            8 => self.value(),
            _ => self.r.gen_range(0..40).to_string().into_bytes(),
        }
    }
    pub fn count_s(&mut self) -> Vec<u8> {
        self.pick(&["0", "1", "2", "3", "5", "100", "-1", "-3", "x"]).as_bytes().to_vec()
    }
    pub fn small_idx(&mut self) -> Vec<u8> {
        match self.r.gen_range(0..10) {
            0 => self.idx(),
            _ => self.r.gen_range(-6..8).to_string().into_bytes(),
        }
    }
    pub fn score(&mut self) -> Vec<u8> {
        match self.r.gen_range(0..14) {
            0 => self.float_s(),
            1 => self.pick(&["inf", "-inf", "+inf", "1e3", "0.5"]).as_bytes().to_vec(),
            _ => self.r.gen_range(-3..6).to_string().into_bytes(),
        }
    }
    pub fn zmember(&mut self) -> Vec<u8> {
        match self.r.gen_range(0..10) {
            0 => self.elem(),
            _ => self.pick(&["a", "b", "c", "d", "e", "f", "1", "2"]).as_bytes().to_vec(),
        }
    }
    pub fn score_bound(&mut self) -> Vec<u8> {
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
    pub fn lex_bound(&mut self) -> Vec<u8> {
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
    pub fn btimeout(&mut self) -> Vec<u8> {
        self.pick(&["0.01", "0.01", "0.01", "0.02", "-1", "x", "0.001"]).as_bytes().to_vec()
    }
    pub fn numkeys(&mut self, keys: &[&str], out: &mut Cmd) {
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
    pub fn stream_id(&mut self) -> Vec<u8> {
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
    pub fn xadd_id(&mut self) -> Vec<u8> {
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
    pub fn range_id(&mut self) -> Vec<u8> {
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
    pub fn group(&mut self) -> Vec<u8> {
        self.pick(&["g1", "g1", "g1", "g2", "g2", "nogroup"]).as_bytes().to_vec()
    }
    pub fn consumer(&mut self) -> Vec<u8> {
        self.pick(&["c1", "c2", "c3"]).as_bytes().to_vec()
    }
    pub fn lonlat(&mut self) -> (Vec<u8>, Vec<u8>) {
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
    pub fn gmember(&mut self) -> Vec<u8> {
        self.pick(&["Palermo", "Catania", "m1", "m2", "m3", "m4", "a"]).as_bytes().to_vec()
    }
    pub fn unit(&mut self) -> Vec<u8> {
        self.pick(&["m", "km", "mi", "ft", "KM", "yd"]).as_bytes().to_vec()
    }
    pub fn radius(&mut self) -> Vec<u8> {
        self.pick(&["10", "50", "100", "200", "500", "0", "-1", "x", "150.5"]).as_bytes().to_vec()
    }
}
