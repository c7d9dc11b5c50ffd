//! x87 80-bit `long double` arithmetic for INCRBYFLOAT/HINCRBYFLOAT, so their replies are
//! byte-identical to Redis's (which parses with strtold, adds in long double and prints with
//! "%.17Lf"): a 64-bit mantissa with round-half-even, exact decimal parsing and printing
//! through a small arbitrary-precision integer. Subnormals are not modelled (they flush to
//! zero, which Redis's parser rejects as ERANGE anyway).

use std::cmp::Ordering;

/// A finite long double: (-1)^neg * m * 2^e, or zero when m == 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LDouble {
    pub neg: bool,
    pub m: u64,
    pub e: i32,
    pub inf: bool,
}

/// The largest binary exponent (value < 2^16384) of an x87 long double.
const MAX_EXP2: i64 = 16384;
/// Smallest normal long double is 2^-16382.
const MIN_EXP2: i64 = -16382;

/// Little-endian base-2^32 unsigned big integer.
#[derive(Clone, Debug, Default)]
struct Big(Vec<u32>);

impl Big {
    fn from_u64(v: u64) -> Big {
        let mut b = Big(vec![v as u32, (v >> 32) as u32]);
        b.trim();
        b
    }
    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }
    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }
    fn mul_small(&mut self, k: u32) {
        let mut carry = 0u64;
        for l in self.0.iter_mut() {
            let v = *l as u64 * k as u64 + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
    }
    fn add_small(&mut self, k: u32) {
        let mut carry = k as u64;
        for l in self.0.iter_mut() {
            if carry == 0 {
                break;
            }
            let v = *l as u64 + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
    }
    fn mul_pow10(&mut self, mut n: u32) {
        while n >= 9 {
            self.mul_small(1_000_000_000);
            n -= 9;
        }
        if n > 0 {
            self.mul_small(10u32.pow(n));
        }
    }
    /// Divide in place by k, returning the remainder.
    fn div_small(&mut self, k: u32) -> u32 {
        let mut rem = 0u64;
        for l in self.0.iter_mut().rev() {
            let v = (rem << 32) | *l as u64;
            *l = (v / k as u64) as u32;
            rem = v % k as u64;
        }
        self.trim();
        rem as u32
    }
    fn bits(&self) -> u64 {
        match self.0.last() {
            None => 0,
            Some(&top) => (self.0.len() as u64 - 1) * 32 + (32 - top.leading_zeros() as u64),
        }
    }
    fn bit(&self, i: u64) -> bool {
        let w = (i / 32) as usize;
        w < self.0.len() && (self.0[w] >> (i % 32)) & 1 == 1
    }
    /// Any bit below position i set?
    fn any_below(&self, i: u64) -> bool {
        let w = (i / 32) as usize;
        for (j, &l) in self.0.iter().enumerate() {
            if j < w {
                if l != 0 {
                    return true;
                }
            } else if j == w {
                let mask = (1u64 << (i % 32)) - 1;
                return (l as u64 & mask) != 0;
            } else {
                break;
            }
        }
        false
    }
    fn shl(&self, s: u64) -> Big {
        if self.is_zero() {
            return Big::default();
        }
        let words = (s / 32) as usize;
        let bits = (s % 32) as u32;
        let mut v = vec![0u32; words];
        let mut carry = 0u32;
        for &l in &self.0 {
            if bits == 0 {
                v.push(l);
            } else {
                v.push((l << bits) | carry);
                carry = l >> (32 - bits);
            }
        }
        if carry != 0 {
            v.push(carry);
        }
        let mut b = Big(v);
        b.trim();
        b
    }
    /// Bits [lo, lo+64) as a u64.
    fn extract(&self, lo: u64) -> u64 {
        let mut r = 0u64;
        for i in 0..64 {
            if self.bit(lo + i) {
                r |= 1 << i;
            }
        }
        r
    }
    fn cmp(&self, o: &Big) -> Ordering {
        if self.0.len() != o.0.len() {
            return self.0.len().cmp(&o.0.len());
        }
        for (a, b) in self.0.iter().rev().zip(o.0.iter().rev()) {
            if a != b {
                return a.cmp(b);
            }
        }
        Ordering::Equal
    }
    fn sub(&mut self, o: &Big) {
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let b = *o.0.get(i).unwrap_or(&0) as i64;
            let mut v = self.0[i] as i64 - b - borrow;
            borrow = 0;
            if v < 0 {
                v += 1 << 32;
                borrow = 1;
            }
            self.0[i] = v as u32;
        }
        self.trim();
    }
    fn add(&mut self, o: &Big) {
        if self.0.len() < o.0.len() {
            self.0.resize(o.0.len(), 0);
        }
        let mut carry = 0u64;
        for i in 0..self.0.len() {
            let v = self.0[i] as u64 + *o.0.get(i).unwrap_or(&0) as u64 + carry;
            self.0[i] = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
    }
    fn to_decimal(&self) -> String {
        if self.is_zero() {
            return "0".into();
        }
        let mut t = self.clone();
        let mut chunks = Vec::new();
        while !t.is_zero() {
            chunks.push(t.div_small(1_000_000_000));
        }
        let mut s = chunks.pop().unwrap().to_string();
        for c in chunks.iter().rev() {
            s.push_str(&format!("{:09}", c));
        }
        s
    }
}

/// Round N * 2^e0 (N > 0) to a 64-bit mantissa, round-half-even.
fn round_big(neg: bool, n: &Big, e0: i64) -> LDouble {
    let bl = n.bits();
    if bl == 0 {
        return LDouble::zero(neg);
    }
    let (mut m, mut e) = if bl <= 64 {
        (n.extract(0) << (64 - bl), e0 - (64 - bl as i64))
    } else {
        let s = bl - 64;
        let mut m = n.extract(s);
        let half = n.bit(s - 1);
        let sticky = s >= 2 && n.any_below(s - 1);
        let mut e = e0 + s as i64;
        if half && (sticky || m & 1 == 1) {
            let (nm, o) = m.overflowing_add(1);
            m = nm;
            if o {
                m = 1 << 63;
                e += 1;
            }
        }
        (m, e)
    };
    if e + 64 > MAX_EXP2 {
        return LDouble { neg, m: 0, e: 0, inf: true };
    }
    if e + 63 < MIN_EXP2 {
        // Subnormal or underflow: flushed to zero (see the module comment).
        m = 0;
        e = 0;
    }
    LDouble { neg, m, e: e as i32, inf: false }
}

impl LDouble {
    pub fn zero(neg: bool) -> LDouble {
        LDouble { neg, m: 0, e: 0, inf: false }
    }
    pub fn is_zero(&self) -> bool {
        !self.inf && self.m == 0
    }
    pub fn from_i64(v: i64) -> LDouble {
        if v == 0 {
            return LDouble::zero(false);
        }
        round_big(v < 0, &Big::from_u64(v.unsigned_abs()), 0)
    }

    /// Redis's string2ld / getLongDoubleFromObject: strtold over the whole string, no leading
    /// space, no NaN, no overflow to HUGE_VAL and no underflow to zero.
    pub fn parse(s: &[u8]) -> Option<LDouble> {
        if s.is_empty() || s.len() >= 5 * 1024 || s[0].is_ascii_whitespace() || s[0] == 0x0b || s[0] == 0x0c {
            return None;
        }
        let (neg, body) = match s[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let lower = body.to_ascii_lowercase();
        if lower == b"inf" || lower == b"infinity" {
            return Some(LDouble { neg, m: 0, e: 0, inf: true });
        }
        let r = if lower.starts_with(b"0x") { parse_hex(&lower[2..], neg)? } else { parse_dec(&lower, neg)? };
        if r.inf {
            return None; // ERANGE with HUGE_VAL
        }
        if r.m == 0 && !all_zero_literal(&lower) {
            return None; // ERANGE underflow to zero
        }
        Some(r)
    }

    pub fn plus(self, o: LDouble) -> LDouble {
        if self.inf || o.inf {
            if self.inf && o.inf && self.neg != o.neg {
                // NaN: reported by the caller like Redis's isnan check.
                return LDouble { neg: false, m: 1, e: 0, inf: true };
            }
            return if self.inf { self } else { o };
        }
        if self.m == 0 {
            return if o.m == 0 { LDouble::zero(self.neg && o.neg) } else { o };
        }
        if o.m == 0 {
            return self;
        }
        let e0 = (self.e as i64).min(o.e as i64);
        let a = Big::from_u64(self.m).shl((self.e as i64 - e0) as u64);
        let b = Big::from_u64(o.m).shl((o.e as i64 - e0) as u64);
        if self.neg == o.neg {
            let mut s = a;
            s.add(&b);
            round_big(self.neg, &s, e0)
        } else {
            match a.cmp(&b) {
                Ordering::Equal => LDouble::zero(false),
                Ordering::Greater => {
                    let mut d = a;
                    d.sub(&b);
                    round_big(self.neg, &d, e0)
                }
                Ordering::Less => {
                    let mut d = b;
                    d.sub(&a);
                    round_big(o.neg, &d, e0)
                }
            }
        }
    }

    /// True for the NaN produced by inf + -inf.
    pub fn is_nan(&self) -> bool {
        self.inf && self.m != 0
    }
    pub fn is_inf(&self) -> bool {
        self.inf
    }

    /// Redis's ld2string(LD_STR_HUMAN): "%.17Lf" with trailing zeros (and a trailing '.')
    /// removed, "-0" printed as "0".
    pub fn to_human(&self) -> String {
        if self.inf {
            return if self.neg { "-inf".into() } else { "inf".into() };
        }
        // round(|v| * 10^17), half-even, as an integer.
        let mut n = Big::from_u64(self.m);
        n.mul_pow10(17);
        let scaled = if self.e >= 0 {
            n.shl(self.e as u64)
        } else {
            let s = (-self.e) as u64;
            let mut q = shr(&n, s);
            let half = n.bit(s - 1);
            let sticky = s >= 2 && n.any_below(s - 1);
            if half && (sticky || q.bit(0)) {
                q.add_small(1);
            }
            q
        };
        let digits = scaled.to_decimal();
        let digits = if digits.len() < 18 { format!("{}{}", "0".repeat(18 - digits.len()), digits) } else { digits };
        let (ip, fp) = digits.split_at(digits.len() - 17);
        let fp = fp.trim_end_matches('0');
        let mut s = String::new();
        if self.neg {
            s.push('-');
        }
        s.push_str(ip);
        if !fp.is_empty() {
            s.push('.');
            s.push_str(fp);
        }
        if s == "-0" {
            s = "0".into();
        }
        s
    }
}

fn shr(n: &Big, s: u64) -> Big {
    let bl = n.bits();
    if s >= bl {
        return Big::default();
    }
    let mut v = Vec::new();
    let mut i = s;
    while i < bl {
        let mut w = 0u32;
        for b in 0..32 {
            if i + b < bl && n.bit(i + b) {
                w |= 1 << b;
            }
        }
        v.push(w);
        i += 32;
    }
    let mut b = Big(v);
    b.trim();
    b
}

fn all_zero_literal(s: &[u8]) -> bool {
    // Mantissa digits all zero (before any exponent marker).
    let hex = s.starts_with(b"0x");
    let body = if hex { &s[2..] } else { s };
    let stop = if hex { b'p' } else { b'e' };
    body.iter().take_while(|&&c| c != stop).all(|&c| c == b'0' || c == b'.')
}

fn parse_exp(s: &[u8]) -> Option<i64> {
    let (neg, d) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if d.is_empty() || !d.iter().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut v: i64 = 0;
    for &c in d {
        v = (v * 10 + (c - b'0') as i64).min(1 << 40);
    }
    Some(if neg { -v } else { v })
}

fn parse_dec(s: &[u8], neg: bool) -> Option<LDouble> {
    let (mant, exp) = match s.iter().position(|&c| c == b'e') {
        Some(p) => (&s[..p], parse_exp(&s[p + 1..])?),
        None => (s, 0),
    };
    let mut n = Big::default();
    let mut frac = 0i64;
    let mut seen_dot = false;
    let mut ndigits = 0;
    for &c in mant {
        match c {
            b'.' if !seen_dot => seen_dot = true,
            b'0'..=b'9' => {
                ndigits += 1;
                if n.is_zero() && c == b'0' {
                    if seen_dot {
                        frac += 1;
                    }
                    continue;
                }
                n.mul_small(10);
                n.add_small((c - b'0') as u32);
                if seen_dot {
                    frac += 1;
                }
            }
            _ => return None,
        }
    }
    if ndigits == 0 {
        return None;
    }
    if n.is_zero() {
        return Some(LDouble::zero(neg));
    }
    let e10 = exp - frac;
    if e10 > 5000 {
        return Some(LDouble { neg, m: 0, e: 0, inf: true });
    }
    if e10 < -5100 - n.bits() as i64 {
        return Some(LDouble::zero(neg));
    }
    if e10 >= 0 {
        n.mul_pow10(e10 as u32);
        return Some(round_big(neg, &n, 0));
    }
    // n / 10^k: scale n by 2^sh so the quotient has at least 66 bits, divide bit by bit.
    let mut d = Big::from_u64(1);
    d.mul_pow10((-e10) as u32);
    let sh = (d.bits() as i64 - n.bits() as i64 + 66).max(0) as u64;
    let mut rem = n.shl(sh);
    let qbits = rem.bits().saturating_sub(d.bits()) + 1;
    let mut q = Big::default();
    for i in (0..qbits).rev() {
        let ds = d.shl(i);
        if rem.cmp(&ds) != Ordering::Less {
            rem.sub(&ds);
            q.add(&Big::from_u64(1).shl(i));
        }
    }
    // Sticky bit from the remainder: append one low bit that is set if rem != 0.
    let mut q2 = q.shl(1);
    if !rem.is_zero() {
        q2.add_small(1);
    }
    Some(round_big(neg, &q2, -(sh as i64) - 1))
}

fn parse_hex(s: &[u8], neg: bool) -> Option<LDouble> {
    let (mant, exp) = match s.iter().position(|&c| c == b'p') {
        Some(p) => (&s[..p], parse_exp(&s[p + 1..])?),
        None => (s, 0),
    };
    let mut n = Big::default();
    let mut frac = 0i64;
    let mut seen_dot = false;
    let mut ndigits = 0;
    for &c in mant {
        match c {
            b'.' if !seen_dot => seen_dot = true,
            _ => {
                let v = (c as char).to_digit(16)?;
                ndigits += 1;
                n.mul_small(16);
                n.add_small(v);
                if seen_dot {
                    frac += 4;
                }
            }
        }
    }
    if ndigits == 0 {
        return None;
    }
    if n.is_zero() {
        return Some(LDouble::zero(neg));
    }
    Some(round_big(neg, &n, exp - frac))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inc(a: &str, b: &str) -> String {
        LDouble::parse(a.as_bytes()).unwrap().plus(LDouble::parse(b.as_bytes()).unwrap()).to_human()
    }

    #[test]
    fn matches_redis_long_double() {
        // Values observed from redis-server 7.0 INCRBYFLOAT.
        assert_eq!(inc("0", "0.1"), "0.1");
        assert_eq!(inc("0.1", "0.2"), "0.3");
        assert_eq!(inc("10.5", "0.1"), "10.6");
        assert_eq!(inc("9223372036854775807", "5.0e3"), "9223372036854780807");
        assert_eq!(inc("-9223372036854775808", "-0"), "-9223372036854775808");
        assert_eq!(inc("5.0e3", "3.0e3"), "8000");
        assert_eq!(inc("0", "-0"), "0");
        assert_eq!(inc("1", "-1"), "0");
        assert_eq!(inc("3", "1e-5"), "3.00001");
        assert!(inc("0", "1.7976931348623157e308").starts_with("17976931348623156999592104677410443404838644694432917848531442076517662852312439635470186860838708556442879341942552068930870836345113605535789727802647761707349897768628839483561816329404559443492953744729062748066941738464887912277621833359895385283210328250475161169120811772015998"));
        assert!(inc("0", "1e400").starts_with("10000000000000000000281880683947586514586453433629052038625910693539685534008629862039363994848324160522094053927317616200295822777259255734023828976593340661017797447434546173917862448116674971723778943824391593338047470675026246684401359237513603830343735485505244955964979021825038280091068414947402456898653040951017512658092615827588920183472511643316591362664138176309734806343732497430221946880"));
        assert_eq!(inc("0x10", "0"), "16");
        assert!(LDouble::parse(b"1e5000").is_none());
        assert!(LDouble::parse(b"1e-5000").is_none());
        assert!(LDouble::parse(b"0e-5000").is_some());
        assert!(LDouble::parse(b"nan").is_none());
        assert!(LDouble::parse(b" 1").is_none());
        assert!(LDouble::parse(b"1 ").is_none());
        assert!(LDouble::parse(b"").is_none());
        assert!(LDouble::parse(b"abc").is_none());
        assert!(LDouble::parse(b"inf").unwrap().is_inf());
        assert!(LDouble::parse(b"-Infinity").unwrap().is_inf());
    }
}
