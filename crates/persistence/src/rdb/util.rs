//! Number <-> string conversions with Redis's exact semantics.

/// Redis `string2ll` / `lpStringToInt64`: strict canonical decimal parsing
/// (no leading zeros, no `+`, no spaces, length < 21).
pub fn string_to_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = if s[0] == b'-' { (true, &s[1..]) } else { (false, s) };
    if digits.is_empty() || !(b'1'..=b'9').contains(&digits[0]) {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    if neg {
        if v > (i64::MAX as u64) + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

/// Redis `double2ll`: the double is an integer in a range where the
/// conversion is exact.
pub fn double_to_i64(d: f64) -> Option<i64> {
    let lim = (i64::MAX / 2) as f64;
    if d < -lim || d > lim || d.is_nan() {
        return None;
    }
    let l = d as i64;
    if l as f64 == d {
        Some(l)
    } else {
        None
    }
}

/// C's `printf("%.17g", v)` for finite non-zero `v`.
pub fn format_g17(v: f64) -> String {
    const P: i32 = 17;
    let sci = format!("{:.*e}", (P - 1) as usize, v);
    let (mant, exp) = sci.split_once('e').expect("exponent");
    let exp: i32 = exp.parse().expect("exponent digits");
    if !(-4..P).contains(&exp) {
        let mant = strip_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", mant, sign, exp.abs())
    } else {
        let fixed = format!("{:.*}", (P - 1 - exp) as usize, v);
        strip_zeros(&fixed).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Redis `d2string`.
pub fn d2string(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v < 0.0 {
            "-inf".into()
        } else {
            "inf".into()
        }
    } else if v == 0.0 {
        if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        }
    } else if let Some(l) = double_to_i64(v) {
        l.to_string()
    } else {
        format_g17(v)
    }
}

/// `strtod`-like parsing for scores stored as strings (listpack/ziplist
/// scores, RDB_TYPE_ZSET string doubles).
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(s).ok()?;
    let t = s.trim();
    match t.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => return Some(f64::INFINITY),
        "-inf" | "-infinity" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    t.parse::<f64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string2ll_semantics() {
        assert_eq!(string_to_i64(b"0"), Some(0));
        assert_eq!(string_to_i64(b"-0"), None);
        assert_eq!(string_to_i64(b"01"), None);
        assert_eq!(string_to_i64(b"+1"), None);
        assert_eq!(string_to_i64(b" 1"), None);
        assert_eq!(string_to_i64(b"-"), None);
        assert_eq!(string_to_i64(b""), None);
        assert_eq!(string_to_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(string_to_i64(b"9223372036854775808"), None);
        assert_eq!(string_to_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(string_to_i64(b"-9223372036854775809"), None);
        assert_eq!(string_to_i64(b"123abc"), None);
    }

    #[test]
    fn g17_matches_c() {
        assert_eq!(format_g17(1.5), "1.5");
        assert_eq!(format_g17(0.1), "0.10000000000000001");
        assert_eq!(format_g17(2.1), "2.1000000000000001");
        assert_eq!(format_g17(1e-5), "1.0000000000000001e-05");
        assert_eq!(format_g17(1e300), "1.0000000000000001e+300");
        assert_eq!(format_g17(123456.5), "123456.5");
        assert_eq!(format_g17(-2.5), "-2.5");
        assert_eq!(format_g17(1e17), "1e+17");
        assert_eq!(format_g17(0.0001), "0.0001");
    }

    #[test]
    fn d2string_cases() {
        assert_eq!(d2string(3.0), "3");
        assert_eq!(d2string(-0.0), "-0");
        assert_eq!(d2string(f64::INFINITY), "inf");
        assert_eq!(d2string(f64::NEG_INFINITY), "-inf");
        assert_eq!(d2string(2.5), "2.5");
    }
}
