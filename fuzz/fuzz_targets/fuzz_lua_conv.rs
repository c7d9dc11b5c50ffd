#![no_main]
//! The Lua <-> RESP conversion layer of scripting (crates/node/src/lua): random bytes decode
//! into (a) a Lua value tree — nested tables with holes, cycles, numbers including NaN, ±inf and
//! huge values, strings with CR/LF and NULs, booleans, and Redis's special tables {ok=},
//! {err=} (with source/line/ignore_error_stats_update), {double=}, {map=}, {set=},
//! {big_number=}, {verbatim_string=} holding values of any type — converted as a script's return
//! value for RESP2 and RESP3 clients with the script in RESP2 or RESP3 mode; and (b) a RESP
//! reply (well formed of every RESP2/RESP3 type, or arbitrary bytes) converted into Lua as
//! redis.call does and back out again.
//!
//! Checked: nothing panics (or aborts), the Lua stack is balanced, and every output is exactly
//! one complete, well-formed reply — using only RESP2 types when the client speaks RESP2.
use ferrocache_node::lua::{convert_lua_value, convert_resp_via_lua, LuaValue, Vm};
use libfuzzer_sys::fuzz_target;

/// The input, a read position, and whether the value tree already has its one cycle (two
/// references back to an ancestor make the output exponential, in redis-server too), and the
/// nesting depth allowed (small with a cycle: the cycle repeats the tree ~8000 times).
struct Bytes<'a>(&'a [u8], usize, bool, usize);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.0.get(self.1).copied().unwrap_or(0);
        self.1 += 1;
        b
    }
    fn done(&self) -> bool {
        self.1 >= self.0.len()
    }
    fn take(&mut self, n: usize) -> Vec<u8> {
        let a = self.1.min(self.0.len());
        let b = (a + n).min(self.0.len());
        self.1 = a + n;
        self.0[a..b].to_vec()
    }
    fn u64(&mut self) -> u64 {
        let mut v = 0u64;
        for _ in 0..8 {
            v = (v << 8) | self.byte() as u64;
        }
        v
    }
}

const MAX_DEPTH: usize = 12;

fn number(r: &mut Bytes) -> f64 {
    match r.byte() % 16 {
        0 => f64::NAN,
        1 => f64::INFINITY,
        2 => f64::NEG_INFINITY,
        3 => 0.0,
        4 => -0.0,
        5 => 1e300,
        6 => -1e300,
        7 => 9_223_372_036_854_775_808.0,  // 2^63
        8 => -9_223_372_036_854_775_808.0, // -2^63
        9 => 9_007_199_254_740_993.0,      // 2^53 + 1
        10 => f64::MIN_POSITIVE / 2.0,     // subnormal
        11 => r.u64() as i64 as f64,
        12 => f64::from_bits(r.u64()),
        13 => (r.byte() as i8) as f64 + (r.byte() as f64) / 256.0,
        _ => (r.byte() as i8) as f64,
    }
}

fn string(r: &mut Bytes) -> Vec<u8> {
    let n = (r.byte() % 24) as usize;
    let mut s = r.take(n);
    if r.byte() % 4 == 0 {
        s.extend_from_slice(b"\r\n");
    }
    s
}

fn s(x: &str) -> LuaValue {
    LuaValue::Str(x.as_bytes().to_vec())
}

/// A value usually of the type the special field wants, sometimes of any type.
fn field(r: &mut Bytes, depth: usize, want: u8) -> LuaValue {
    if r.byte() % 4 == 0 {
        return value(r, depth + 1);
    }
    match want {
        b's' => LuaValue::Str(string(r)),
        b'n' => LuaValue::Num(number(r)),
        _ => table(r, depth + 1),
    }
}

fn table(r: &mut Bytes, depth: usize) -> LuaValue {
    if depth >= r.3 {
        return LuaValue::Table(vec![]);
    }
    let n = (r.byte() % 8) as usize;
    let mut pairs = Vec::new();
    let mut idx = 0.0;
    for _ in 0..n {
        if r.done() {
            break;
        }
        let k = match r.byte() % 8 {
            // Array part, with holes.
            0..=3 => {
                idx += 1.0;
                LuaValue::Num(idx)
            }
            4 => {
                idx += 2.0;
                LuaValue::Num(idx)
            }
            5 => LuaValue::Num(number(r)),
            6 => LuaValue::Str(string(r)),
            _ => value(r, depth + 1),
        };
        pairs.push((k, value(r, depth + 1)));
    }
    LuaValue::Table(pairs)
}

fn value(r: &mut Bytes, depth: usize) -> LuaValue {
    if depth >= r.3 {
        return LuaValue::Num(number(r));
    }
    match r.byte() % 18 {
        0 => LuaValue::Nil,
        1 => LuaValue::Bool(r.byte() & 1 == 1),
        2 | 3 => LuaValue::Num(number(r)),
        4 | 5 => LuaValue::Str(string(r)),
        6 => LuaValue::Table(vec![(s("ok"), field(r, depth, b's'))]),
        7 => {
            let mut p = vec![(s("err"), field(r, depth, b's'))];
            if r.byte() & 1 == 1 {
                p.push((s("source"), field(r, depth, b's')));
                p.push((s("line"), field(r, depth, b'n')));
            }
            if r.byte() & 1 == 1 {
                p.push((s("ignore_error_stats_update"), LuaValue::Bool(r.byte() & 1 == 1)));
            }
            LuaValue::Table(p)
        }
        8 => LuaValue::Table(vec![(s("double"), field(r, depth, b'n'))]),
        9 => LuaValue::Table(vec![(s("map"), field(r, depth, b't'))]),
        10 => LuaValue::Table(vec![(s("set"), field(r, depth, b't'))]),
        11 => LuaValue::Table(vec![(s("big_number"), field(r, depth, b's'))]),
        12 => {
            let inner =
                LuaValue::Table(vec![(s("format"), field(r, depth, b's')), (s("string"), field(r, depth, b's'))]);
            LuaValue::Table(vec![(s("verbatim_string"), inner)])
        }
        13 if !r.2 => {
            r.2 = true;
            LuaValue::Ancestor((r.byte() % 4) as usize)
        }
        _ => table(r, depth),
    }
}

/// A well-formed RESP2/RESP3 reply.
fn resp(r: &mut Bytes, depth: usize, out: &mut Vec<u8>) {
    let leaf = depth >= MAX_DEPTH || r.done();
    let t = r.byte() % if leaf { 11 } else { 18 };
    let line = |out: &mut Vec<u8>, p: u8, body: &[u8]| {
        out.push(p);
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
    };
    let text = |r: &mut Bytes| -> Vec<u8> { string(r).into_iter().filter(|&c| c != b'\r' && c != b'\n').collect() };
    match t {
        0 => line(out, b'+', &text(r)),
        1 => {
            let mut e = text(r);
            if e.is_empty() {
                e = b"ERR".to_vec();
            }
            line(out, b'-', &e)
        }
        2 => line(out, b':', (r.u64() as i64).to_string().as_bytes()),
        3 => {
            let b = string(r);
            line(out, b'$', b.len().to_string().as_bytes());
            out.extend_from_slice(&b);
            out.extend_from_slice(b"\r\n");
        }
        4 => line(out, if r.byte() & 1 == 1 { b'$' } else { b'*' }, b"-1"),
        5 => line(out, b'_', b""),
        6 => line(out, b'#', if r.byte() & 1 == 1 { b"t" } else { b"f" }),
        7 => {
            let d = number(r);
            let body = if d.is_nan() {
                "nan".to_string()
            } else if d.is_infinite() {
                if d > 0.0 { "inf" } else { "-inf" }.to_string()
            } else {
                format!("{d}")
            };
            line(out, b',', body.as_bytes())
        }
        8 => {
            let digits: String = (0..(r.byte() % 40) + 1).map(|_| (b'0' + r.byte() % 10) as char).collect();
            line(out, b'(', digits.as_bytes())
        }
        9 => {
            let b = string(r);
            let fmt = if r.byte() & 1 == 1 { &b"txt:"[..] } else { &b"mkd:"[..] };
            line(out, b'=', (b.len() + 4).to_string().as_bytes());
            out.extend_from_slice(fmt);
            out.extend_from_slice(&b);
            out.extend_from_slice(b"\r\n");
        }
        10 => {
            // An attribute, then the real reply.
            out.extend_from_slice(b"|1\r\n+key-popularity\r\n:1\r\n");
            line(out, b'+', b"after attribute");
        }
        _ => {
            let n = (r.byte() % 6) as usize;
            let (p, items) = match t {
                11 | 12 | 13 => (b'*', n),
                14 => (b'~', n),
                15 => (b'>', n),
                16 => (b'%', n * 2),
                _ => (b'|', n * 2 + 1),
            };
            line(out, p, n.to_string().as_bytes());
            for _ in 0..items {
                resp(r, depth + 1, out);
            }
        }
    }
}

/// Check that `b` is exactly one complete well-formed reply (RESP2 types only when `resp2`).
fn check_reply(b: &[u8], resp2: bool) {
    fn one(b: &[u8], mut p: usize, resp2: bool, depth: usize) -> usize {
        assert!(depth < 10_000, "nesting beyond any Lua stack");
        assert!(p < b.len(), "truncated reply");
        let t = b[p];
        let e = p + b[p..].windows(2).position(|w| w == b"\r\n").expect("line without CRLF");
        let body = &b[p + 1..e];
        assert!(
            !body.contains(&b'\r') && !body.contains(&b'\n'),
            "CR/LF inside a line: {:?}",
            String::from_utf8_lossy(body)
        );
        p = e + 2;
        if resp2 {
            assert!(b"+-:$*".contains(&t), "RESP3 type {:?} sent to a RESP2 client", t as char);
        }
        let num = || -> i64 { std::str::from_utf8(body).unwrap().parse().expect("bad length/integer") };
        match t {
            b'+' | b'-' | b'_' | b'#' | b',' | b'(' => {}
            b':' => {
                num();
            }
            b'$' | b'=' => {
                let n = num();
                if n >= 0 {
                    let n = n as usize;
                    assert!(p + n + 2 <= b.len() && &b[p + n..p + n + 2] == b"\r\n", "bad bulk length");
                    p += n + 2;
                } else {
                    assert_eq!(n, -1);
                }
            }
            b'*' | b'~' | b'%' => {
                let n = num();
                assert!(n >= -1);
                let items = if t == b'%' { n * 2 } else { n };
                for _ in 0..items.max(0) {
                    p = one(b, p, resp2, depth + 1);
                }
            }
            _ => panic!("unexpected reply type {:?}", t as char),
        }
        p
    }
    let end = one(b, 0, resp2, 0);
    assert_eq!(end, b.len(), "trailing bytes after the reply");
}

thread_local! {
    static VM: std::cell::RefCell<(Vm, u32)> = std::cell::RefCell::new((Vm::new_eval(), 0));
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    VM.with(|vm| {
        let mut vm = vm.borrow_mut();
        // A fresh interpreter now and then bounds the garbage a long run leaves.
        vm.1 += 1;
        if vm.1 % 10_000 == 0 {
            vm.0 = Vm::new_eval();
        }
        let vm = &vm.0;
        let mode = data[0];
        // Cycles (up to ~8000 nesting levels of output each) only when bit 4 of the mode is set.
        let cycles = mode & 0x10 != 0;
        let mut r = Bytes(&data[1..], 0, !cycles, if cycles { 3 } else { MAX_DEPTH });
        match mode % 3 {
            0 => {
                let v = value(&mut r, 0);
                if cycles {
                    // ~8000 levels of output: one protocol combination (from the mode) is enough.
                    let (client3, script3) = (mode & 0x20 != 0, mode & 0x40 != 0);
                    let out = convert_lua_value(vm, &v, client3, script3);
                    check_reply(&out, !client3);
                    return;
                }
                for client3 in [false, true] {
                    for script3 in [false, true] {
                        let out = convert_lua_value(vm, &v, client3, script3);
                        check_reply(&out, !client3);
                    }
                }
            }
            1 => {
                let mut reply = Vec::new();
                resp(&mut r, 0, &mut reply);
                for client3 in [false, true] {
                    for script3 in [false, true] {
                        let out = convert_resp_via_lua(vm, &reply, client3, script3);
                        check_reply(&out, !client3);
                    }
                }
            }
            _ => {
                // Arbitrary bytes as a reply: must not panic; the result is still well formed.
                let reply = &data[1..];
                for client3 in [false, true] {
                    let out = convert_resp_via_lua(vm, reply, client3, mode & 4 != 0);
                    check_reply(&out, !client3);
                }
            }
        }
    });
});
