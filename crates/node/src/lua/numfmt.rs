//! C's number text conversions as the script libraries use them: `printf("%.<p>g")` and
//! `strtod` (glibc's results: correctly rounded, `inf`/`nan` spellings, hexadecimal floats).

/// `snprintf("%.<prec>g", v)` (prec 1..=17).
pub fn fmt_g(v: f64, prec: usize) -> String {
    let mut out = Vec::new();
    push_g(&mut out, v, prec);
    String::from_utf8(out).unwrap()
}

/// Append `snprintf("%.<prec>g", v)` to `out`.
pub fn push_g(out: &mut Vec<u8>, v: f64, prec: usize) {
    if v.fract() == 0.0 && v.abs() < 10f64.powi(prec.max(1) as i32) && v != 0.0 {
        // An integer of at most `prec` digits prints as itself.
        out.extend_from_slice(itoa::Buffer::new().format(v as i64).as_bytes());
        return;
    }
    out.extend_from_slice(g_string(v, prec).as_bytes());
}

fn g_string(v: f64, prec: usize) -> String {
    if v.is_nan() {
        return if v.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    let p = prec.max(1);
    let s = format!("{:.*e}", p - 1, v);
    let (mant, exp) = s.split_once('e').unwrap();
    let x: i32 = exp.parse().unwrap();
    let neg = mant.starts_with('-');
    let digits: Vec<u8> = mant.bytes().filter(|c| c.is_ascii_digit()).collect();
    let mut out = String::with_capacity(24);
    if neg {
        out.push('-');
    }
    if x < -4 || x >= p as i32 {
        out.push(digits[0] as char);
        let frac = trim_zeros(&digits[1..]);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(std::str::from_utf8(frac).unwrap());
        }
        out.push('e');
        out.push(if x < 0 { '-' } else { '+' });
        let a = x.unsigned_abs();
        if a < 10 {
            out.push('0');
        }
        out.push_str(&a.to_string());
    } else if x >= 0 {
        let int_len = x as usize + 1;
        out.push_str(std::str::from_utf8(&digits[..int_len]).unwrap());
        let frac = trim_zeros(&digits[int_len..]);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(std::str::from_utf8(frac).unwrap());
        }
    } else {
        out.push_str("0.");
        for _ in 0..(-x - 1) {
            out.push('0');
        }
        out.push_str(std::str::from_utf8(trim_zeros(&digits)).unwrap());
    }
    out
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().rposition(|&c| c != b'0').map_or(0, |i| i + 1);
    &d[..n]
}

fn starts_ic(s: &[u8], p: &[u8]) -> bool {
    s.len() >= p.len() && s[..p.len()].eq_ignore_ascii_case(p)
}

/// `strtod` on `s` (no leading white space is skipped: callers start at a token): the value
/// and the number of bytes it used (0: no number).
pub fn strtod(s: &[u8]) -> (f64, usize) {
    let mut i = 0;
    let neg = matches!(s.first(), Some(b'-'));
    if matches!(s.first(), Some(b'-' | b'+')) {
        i = 1;
    }
    let sign = |v: f64| if neg { -v } else { v };
    let rest = &s[i..];
    if starts_ic(rest, b"inf") {
        let n = if starts_ic(rest, b"infinity") { 8 } else { 3 };
        return (sign(f64::INFINITY), i + n);
    }
    if starts_ic(rest, b"nan") {
        let mut n = 3;
        if rest.get(3) == Some(&b'(') {
            let close = rest[4..].iter().position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'));
            if let Some(k) = close {
                if rest[4 + k] == b')' {
                    n = 4 + k + 1;
                }
            }
        }
        return (sign(f64::NAN), i + n);
    }
    if rest.len() >= 2 && rest[0] == b'0' && (rest[1] | 0x20) == b'x' {
        if let Some((v, n)) = hex(&rest[2..]) {
            return (sign(v), i + 2 + n);
        }
        // "0x" without hex digits: the "0".
        return (sign(0.0), i + 1);
    }
    // Decimal: digits [. digits] [e [sign] digits].
    let mut j = 0;
    let mut mant_digits = 0;
    while j < rest.len() && rest[j].is_ascii_digit() {
        j += 1;
        mant_digits += 1;
    }
    if j < rest.len() && rest[j] == b'.' {
        j += 1;
        while j < rest.len() && rest[j].is_ascii_digit() {
            j += 1;
            mant_digits += 1;
        }
    }
    if mant_digits == 0 {
        return (0.0, 0);
    }
    if j < rest.len() && (rest[j] | 0x20) == b'e' {
        let mut k = j + 1;
        if k < rest.len() && (rest[k] == b'+' || rest[k] == b'-') {
            k += 1;
        }
        if k < rest.len() && rest[k].is_ascii_digit() {
            while k < rest.len() && rest[k].is_ascii_digit() {
                k += 1;
            }
            j = k;
        }
    }
    let text = std::str::from_utf8(&rest[..j]).unwrap();
    let v: f64 = text.parse().unwrap_or_else(|_| {
        // Rust rejects exponents it cannot hold; C saturates.
        let (m, e) = text.split_once(['e', 'E']).unwrap_or((text, "0"));
        let m: f64 = m.parse().unwrap_or(0.0);
        if m == 0.0 || e.starts_with('-') {
            0.0
        } else {
            f64::INFINITY
        }
    });
    (sign(v), i + j)
}

/// A hexadecimal float after "0x": value and length, None without a hex digit.
fn hex(s: &[u8]) -> Option<(f64, usize)> {
    let mut j = 0;
    let mut mant: u64 = 0;
    let mut exp: i64 = 0;
    let mut any = false;
    let mut sticky = false;
    let mut add = |d: u64, frac: bool, mant: &mut u64, exp: &mut i64| {
        if *mant >> 56 == 0 {
            *mant = (*mant << 4) | d;
            if frac {
                *exp -= 4;
            }
        } else {
            sticky |= d != 0;
            if !frac {
                *exp += 4;
            }
        }
    };
    while j < s.len() && s[j].is_ascii_hexdigit() {
        add((s[j] as char).to_digit(16).unwrap() as u64, false, &mut mant, &mut exp);
        any = true;
        j += 1;
    }
    if j < s.len() && s[j] == b'.' {
        let mut k = j + 1;
        let mut frac_any = false;
        while k < s.len() && s[k].is_ascii_hexdigit() {
            add((s[k] as char).to_digit(16).unwrap() as u64, true, &mut mant, &mut exp);
            frac_any = true;
            k += 1;
        }
        if any || frac_any {
            any = true;
            j = k;
        }
    }
    if !any {
        return None;
    }
    if j < s.len() && (s[j] | 0x20) == b'p' {
        let mut k = j + 1;
        let eneg = k < s.len() && s[k] == b'-';
        if k < s.len() && (s[k] == b'+' || s[k] == b'-') {
            k += 1;
        }
        if k < s.len() && s[k].is_ascii_digit() {
            let mut e: i64 = 0;
            while k < s.len() && s[k].is_ascii_digit() {
                e = (e * 10 + (s[k] - b'0') as i64).min(1 << 20);
                k += 1;
            }
            exp += if eneg { -e } else { e };
            j = k;
        }
    }
    if sticky {
        mant |= 1;
    }
    // mant has at most 60 significant bits: the conversion to f64 rounds once.
    let v = (mant as f64) * 2f64.powi(exp.clamp(-2000, 2000) as i32);
    Some((v, j))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_format() {
        assert_eq!(fmt_g(0.1, 14), "0.1");
        assert_eq!(fmt_g(100.0, 14), "100");
        assert_eq!(fmt_g(1e300, 14), "1e+300");
        assert_eq!(fmt_g(1e14, 14), "1e+14");
        assert_eq!(fmt_g(123456789012345.0, 14), "1.2345678901234e+14");
        assert_eq!(fmt_g(0.0001, 14), "0.0001");
        assert_eq!(fmt_g(0.00001, 14), "1e-05");
        assert_eq!(fmt_g(-1.5, 14), "-1.5");
        assert_eq!(fmt_g(1.0 / 3.0, 3), "0.333");
        assert_eq!(fmt_g(2.5, 1), "2");
        assert_eq!(fmt_g(-0.0, 14), "-0");
        assert_eq!(fmt_g(f64::INFINITY, 14), "inf");
    }

    #[test]
    fn strtod_forms() {
        assert_eq!(strtod(b"1.5e3,"), (1500.0, 5));
        assert_eq!(strtod(b"-0.25]"), (-0.25, 5));
        assert_eq!(strtod(b"1e"), (1.0, 1));
        assert_eq!(strtod(b"0x10"), (16.0, 4));
        assert_eq!(strtod(b"0x1p4"), (16.0, 5));
        assert_eq!(strtod(b"0xg"), (0.0, 1));
        assert_eq!(strtod(b"Infinity"), (f64::INFINITY, 8));
        assert_eq!(strtod(b"-inf"), (f64::NEG_INFINITY, 4));
        assert!(strtod(b"nan(123)x").0.is_nan());
        assert_eq!(strtod(b"nan(123)x").1, 8);
        assert_eq!(strtod(b"x"), (0.0, 0));
        assert_eq!(strtod(b"."), (0.0, 0));
        assert_eq!(strtod(b"1e400"), (f64::INFINITY, 5));
    }
}
