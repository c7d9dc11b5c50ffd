//! Redis's number text for sorted sets: strtod-compatible score parsing (hex, inf, nan
//! rules as Redis) and the shortest round-trip double formatting (`%.17g` as Redis prints).

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------------------
// Number parsing
// ---------------------------------------------------------------------------

#[inline]
pub(crate) fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

pub(crate) fn starts_with_ci(s: &[u8], pat: &[u8]) -> bool {
    s.len() >= pat.len() && s[..pat.len()].eq_ignore_ascii_case(pat)
}

/// Emulation of glibc `strtod` on a byte string: returns
/// `(value, bytes consumed, range_error)`. Accepts leading whitespace, a
/// sign, decimal and hexadecimal (`0x1.8p3`) floats, `inf`/`infinity` and
/// `nan`/`nan(...)`, case-insensitively. When nothing can be parsed,
/// consumed is 0 and value 0. `range_error` mirrors `errno == ERANGE` for
/// overflow (result ±inf from finite input) and underflow to zero.
///
/// Decimal conversion is correctly rounded (Rust's parser, like glibc);
/// hexadecimal conversion is exact up to 16 significant hex digits.
pub fn strtod(s: &[u8]) -> (f64, usize, bool) {
    let n = s.len();
    let mut i = 0;
    while i < n && is_c_space(s[i]) {
        i += 1;
    }
    let num_start = i;
    let mut neg = false;
    if i < n && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let sign = if neg { -1.0 } else { 1.0 };
    let rest = &s[i..];
    if starts_with_ci(rest, b"inf") {
        i += 3;
        if starts_with_ci(&s[i..], b"inity") {
            i += 5;
        }
        return (sign * f64::INFINITY, i, false);
    }
    if starts_with_ci(rest, b"nan") {
        i += 3;
        if i < n && s[i] == b'(' {
            let mut j = i + 1;
            while j < n && (s[j].is_ascii_alphanumeric() || s[j] == b'_') {
                j += 1;
            }
            if j < n && s[j] == b')' {
                i = j + 1;
            }
        }
        return (f64::NAN.copysign(sign), i, false);
    }
    if rest.len() >= 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x' {
        let h = &rest[2..];
        let ok = h.first().is_some_and(|c| c.is_ascii_hexdigit())
            || (h.first() == Some(&b'.') && h.get(1).is_some_and(|c| c.is_ascii_hexdigit()));
        if ok {
            let (v, used, erange) = parse_hex(h);
            return (sign * v, i + 2 + used, erange);
        }
        // "0x" without digits: parses as "0", stopping at 'x'.
    }
    let mut digits = 0;
    let mut nonzero = false;
    while i < n && s[i].is_ascii_digit() {
        nonzero |= s[i] != b'0';
        digits += 1;
        i += 1;
    }
    if i < n && s[i] == b'.' {
        i += 1;
        while i < n && s[i].is_ascii_digit() {
            nonzero |= s[i] != b'0';
            digits += 1;
            i += 1;
        }
    }
    if digits == 0 {
        return (0.0, 0, false);
    }
    if i < n && (s[i] | 0x20) == b'e' {
        let mut j = i + 1;
        if j < n && (s[j] == b'+' || s[j] == b'-') {
            j += 1;
        }
        if j < n && s[j].is_ascii_digit() {
            while j < n && s[j].is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    let text = std::str::from_utf8(&s[num_start..i]).expect("ascii");
    let v: f64 = text.parse().unwrap_or(0.0);
    let erange = v.is_infinite() || (v == 0.0 && nonzero);
    (v, i, erange)
}

/// Parse the hex-float body after "0x": returns (value, consumed, erange).
pub(crate) fn parse_hex(h: &[u8]) -> (f64, usize, bool) {
    let mut i = 0;
    let mut mant: u64 = 0;
    let mut exp: i64 = 0;
    let mut sig = 0; // significant hex digits accumulated
    let mut sticky = false;
    let mut seen_dot = false;
    loop {
        if i < h.len() && h[i].is_ascii_hexdigit() {
            let d = (h[i] as char).to_digit(16).unwrap() as u64;
            if sig < 16 {
                if mant != 0 || d != 0 {
                    mant = (mant << 4) | d;
                    sig += 1;
                }
                if seen_dot {
                    exp -= 4;
                }
            } else {
                sticky |= d != 0;
                if !seen_dot {
                    exp += 4;
                }
            }
            i += 1;
        } else if i < h.len() && h[i] == b'.' && !seen_dot {
            seen_dot = true;
            i += 1;
        } else {
            break;
        }
    }
    if i < h.len() && (h[i] | 0x20) == b'p' {
        let mut j = i + 1;
        let mut eneg = false;
        if j < h.len() && (h[j] == b'+' || h[j] == b'-') {
            eneg = h[j] == b'-';
            j += 1;
        }
        if j < h.len() && h[j].is_ascii_digit() {
            let mut e: i64 = 0;
            while j < h.len() && h[j].is_ascii_digit() {
                e = (e * 10 + (h[j] - b'0') as i64).min(1 << 20);
                j += 1;
            }
            exp += if eneg { -e } else { e };
            i = j;
        }
    }
    if sticky {
        mant |= 1;
    }
    let mut v = mant as f64;
    let mut e = exp;
    while e > 0 {
        let step = e.min(1000);
        v *= 2f64.powi(step as i32);
        e -= step;
    }
    while e < 0 {
        let step = (-e).min(1000);
        v /= 2f64.powi(step as i32);
        e += step;
    }
    let erange = v.is_infinite() || (v == 0.0 && mant != 0);
    (v, i, erange)
}

/// Parse a score the way `getDoubleFromObject`/`string2d` does (ZADD,
/// ZINCRBY, ...): the whole string must be a C float, no leading (or
/// trailing) whitespace, not empty, not NaN, and no overflow/underflow to
/// zero (`1e400`, `1e-400` are rejected; `inf`, `-inf`, `1e-310` accepted).
/// Hex floats are accepted like strtod does. On `None` the command layer
/// replies "ERR value is not a valid float".
pub fn parse_score(s: &[u8]) -> Option<f64> {
    // Fast path: short plain integers.
    if !s.is_empty() && s.len() <= 16 {
        let (neg, d) = match s[0] {
            b'-' => (true, &s[1..]),
            _ => (false, s),
        };
        if !d.is_empty() && d.len() <= 15 && d.iter().all(|c| c.is_ascii_digit()) {
            let mut v: u64 = 0;
            for &c in d {
                v = v * 10 + (c - b'0') as u64;
            }
            let f = v as f64;
            return Some(if neg { -f } else { f });
        }
    }
    if s.is_empty() || is_c_space(s[0]) {
        return None;
    }
    let (v, used, erange) = strtod(s);
    if used != s.len() || v.is_nan() || (erange && (v.is_infinite() || v == 0.0)) {
        return None;
    }
    Some(v)
}

// ---------------------------------------------------------------------------
// Number formatting
// ---------------------------------------------------------------------------

/// Buffer size sufficient for any [`write_double`] output.
pub const MAX_DOUBLE_CHARS: usize = 32;

pub(crate) struct StackWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl std::fmt::Write for StackWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let b = s.as_bytes();
        let end = self.len + b.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(b);
        self.len = end;
        Ok(())
    }
}

pub(crate) fn write_u64(mut v: u64, out: &mut [u8]) -> usize {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let n = tmp.len() - i;
    out[..n].copy_from_slice(&tmp[i..]);
    n
}

/// Format like C `printf("%.17g", v)` (Redis's `addReplyDouble` for RESP2)
/// into `out`, returning the length. `inf`, `-inf`, `nan`, `-0` as glibc.
/// Never allocates.
pub fn write_double(v: f64, out: &mut [u8; MAX_DOUBLE_CHARS]) -> usize {
    if v.is_nan() {
        out[..3].copy_from_slice(b"nan");
        return 3;
    }
    if v.is_infinite() {
        return if v > 0.0 {
            out[..3].copy_from_slice(b"inf");
            3
        } else {
            out[..4].copy_from_slice(b"-inf");
            4
        };
    }
    let mut p = 0;
    if v.is_sign_negative() {
        out[0] = b'-';
        p = 1;
    }
    let a = v.abs();
    // Fast path: integers below 1e17 print all their digits exactly.
    if a < 1e15 && a == a.trunc() {
        return p + write_u64(a as u64, &mut out[p..]);
    }
    // General path: 17 significant digits, correctly rounded.
    let mut tmp = [0u8; 40];
    let len = {
        let mut w = StackWriter { buf: &mut tmp, len: 0 };
        std::fmt::write(&mut w, format_args!("{:.16e}", a)).expect("fits");
        w.len
    };
    let t = &tmp[..len];
    // t = "d.dddddddddddddddde[-]x"
    let epos = t.iter().position(|&c| c == b'e').expect("exp");
    let mut digits = [0u8; 17];
    digits[0] = t[0];
    digits[1..17].copy_from_slice(&t[2..18]);
    debug_assert_eq!(epos, 18);
    let (eneg, es) = if t[epos + 1] == b'-' { (true, &t[epos + 2..]) } else { (false, &t[epos + 1..]) };
    let mut exp: i32 = 0;
    for &c in es {
        exp = exp * 10 + (c - b'0') as i32;
    }
    if eneg {
        exp = -exp;
    }
    // Strip trailing zeros (no '#' flag).
    let mut nd = 17;
    while nd > 1 && digits[nd - 1] == b'0' {
        nd -= 1;
    }
    if !(-4..17).contains(&exp) {
        out[p] = digits[0];
        p += 1;
        if nd > 1 {
            out[p] = b'.';
            p += 1;
            out[p..p + nd - 1].copy_from_slice(&digits[1..nd]);
            p += nd - 1;
        }
        out[p] = b'e';
        out[p + 1] = if exp < 0 { b'-' } else { b'+' };
        p += 2;
        let ea = exp.unsigned_abs();
        if ea < 10 {
            out[p] = b'0';
            p += 1;
        }
        p += write_u64(ea as u64, &mut out[p..]);
        p
    } else if exp >= 0 {
        let ip = exp as usize + 1; // digits before the point
        out[p..p + ip].copy_from_slice(&digits[..ip]);
        p += ip;
        if nd > ip {
            out[p] = b'.';
            p += 1;
            out[p..p + nd - ip].copy_from_slice(&digits[ip..nd]);
            p += nd - ip;
        }
        p
    } else {
        let z = (-exp - 1) as usize;
        out[p..p + 2].copy_from_slice(b"0.");
        p += 2;
        for _ in 0..z {
            out[p] = b'0';
            p += 1;
        }
        out[p..p + nd].copy_from_slice(&digits[..nd]);
        p + nd
    }
}

/// `%.17g` formatting as a `String` (see [`write_double`]).
pub fn format_double(v: f64) -> String {
    let mut buf = [0u8; MAX_DOUBLE_CHARS];
    let n = write_double(v, &mut buf);
    String::from_utf8(buf[..n].to_vec()).expect("ascii")
}

/// Append the `%.17g` formatting of `v` to `out`.
pub fn append_double(v: f64, out: &mut Vec<u8>) {
    let mut buf = [0u8; MAX_DOUBLE_CHARS];
    let n = write_double(v, &mut buf);
    out.extend_from_slice(&buf[..n]);
}

/// Approximation of Redis's `ld2string(..., LD_STR_HUMAN)` (`"%.17Lf"`,
/// trailing zeros and dot removed, `-0` -> `0`) used by INCRBYFLOAT and
/// HINCRBYFLOAT replies/stored values.
///
/// Redis computes those in 80-bit `long double`, whose extra precision hides
/// the binary noise of decimal inputs. Rust has no long double, so values
/// are computed in `f64` and the formatter removes the noise: it prints the
/// value rounded to the fewest fractional digits (0..=17) that stays within
/// one ulp of it, falling back to 17 decimals like `%.17Lf`. Integers of
/// magnitude >= 2^53 print their exact value. Examples matching Redis:
/// `0.1 + 0.2` -> `"0.3"`, `10.5 + 0.1` -> `"10.6"`, `3.0e3` -> `"3000"`,
/// `1.000001` stays as is, `1e-18` -> `"0"`.
///
/// For INCRBYFLOAT use [`format_human_sum`], which also accounts for the
/// operands' rounding error (so `1 + -1.1` -> `"-0.1"` as in Redis).
///
/// Known divergences: values where the long double result itself shows
/// noise at 17 decimals (`123456.789` -> Redis `"123456.78900000000000148"`,
/// `3 + 0.3333333333333333` -> Redis `"3.3333333333333333"`, `1e15 + 0.3`,
/// `0.12345678901234567` whose nearest f64 prints as `...66`)
/// print the cleaner f64-derived string here.
pub fn format_human(v: f64) -> String {
    format_human_with_error(v, ulp(v))
}

/// INCRBYFLOAT helper: `(a + b, format)` where the formatting tolerates the
/// rounding error of the inputs (one ulp of the largest magnitude involved).
/// The caller must still reject a NaN/infinite sum ("ERR increment would
/// produce NaN or Infinity").
pub fn format_human_sum(a: f64, b: f64) -> (f64, String) {
    let v = a + b;
    let m = a.abs().max(b.abs()).max(v.abs());
    (v, format_human_with_error(v, ulp(m)))
}

/// [`format_human`] with an explicit absolute error bound for `v`.
pub fn format_human_with_error(v: f64, max_err: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v.is_nan() {
        return "nan".into();
    }
    if v.abs() >= 9007199254740992.0 {
        return format!("{:.0}", v);
    }
    for k in 0..17usize {
        let s = format!("{:.*}", k, v);
        if let Ok(c) = s.parse::<f64>() {
            if (c - v).abs() <= max_err {
                return strip_fixed(s);
            }
        }
    }
    strip_fixed(format!("{:.17}", v))
}

pub(crate) fn ulp(x: f64) -> f64 {
    let a = x.abs();
    if !a.is_finite() {
        return 0.0;
    }
    f64::from_bits(a.to_bits() + 1) - a
}

/// Strip trailing zeros and a trailing dot, and turn "-0" into "0".
pub(crate) fn strip_fixed(mut s: String) -> String {
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".into();
    }
    s
}
