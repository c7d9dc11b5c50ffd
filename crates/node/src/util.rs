//! Argument parsing helpers with Redis's error texts.

use ferrocache_protocol::resp::ReplyBuf;

pub const ERR_NOT_INT: &str = "ERR value is not an integer or out of range";
pub const ERR_NOT_FLOAT: &str = "ERR value is not a valid float";
pub const ERR_SYNTAX: &str = "ERR syntax error";
pub const ERR_WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const ERR_NO_KEY: &str = "ERR no such key";
pub const ERR_OVERFLOW: &str = "ERR increment or decrement would overflow";

/// Redis's string2ll-based integer argument.
pub fn parse_i64(a: &[u8]) -> Option<i64> {
    ferrocache_protocol::resp::parse_i64_strict(a)
}

/// Integer argument or write Redis's error. Returns None after writing the error.
pub fn int_arg(out: &mut ReplyBuf, a: &[u8]) -> Option<i64> {
    match parse_i64(a) {
        Some(v) => Some(v),
        None => {
            out.error(ERR_NOT_INT);
            None
        }
    }
}

/// Redis's strtold-based float parsing (getLongDoubleFromObject): no spaces, no NaN.
pub fn parse_f64(a: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(a).ok()?;
    if s.is_empty() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
        return None;
    }
    let l = s.to_ascii_lowercase();
    let v: f64 = match l.as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => {
            if l.contains("nan") || l.starts_with("0x") || l.starts_with("-0x") || l.starts_with("+0x") {
                return None;
            }
            s.parse().ok()?
        }
    };
    if v.is_nan() {
        return None;
    }
    Some(v)
}

pub fn eq_ic(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

/// Format a float the way INCRBYFLOAT replies (Redis's %.17Lf with trailing zeros removed,
/// approximated with the shortest round-trip f64 representation).
pub fn format_human_float(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v == v.trunc() && v.abs() < 1e17 {
        return format!("{}", v as i128);
    }
    let s = format!("{}", v);
    if s.contains('e') {
        let f = format!("{:.17}", v);
        let t = f.trim_end_matches('0').trim_end_matches('.');
        return t.to_string();
    }
    s
}

/// Clamp Redis-style range indices (negative from the end) to [0, len).
/// Returns None when the range is empty.
pub fn range_indices(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut s = if start < 0 { len + start } else { start };
    let mut e = if end < 0 { len + end } else { end };
    if s < 0 {
        s = 0;
    }
    if s > e || s >= len {
        return None;
    }
    if e >= len {
        e = len - 1;
    }
    Some((s as usize, e as usize))
}

/// A SCAN-family cursor (strtoul, as Redis parses it) or write "invalid cursor".
pub fn cursor_arg(out: &mut ReplyBuf, a: &[u8]) -> Option<u64> {
    // strtoul: optional sign (a negative cursor wraps), decimal digits, no leading space.
    let parsed = (|| {
        if a.is_empty() {
            return Some(0);
        }
        let (neg, d) = match a.first() {
            Some(b'-') => (true, &a[1..]),
            Some(b'+') => (false, &a[1..]),
            _ => (false, a),
        };
        let v = std::str::from_utf8(d)
            .ok()
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())?;
        Some(if neg { v.wrapping_neg() } else { v })
    })();
    match parsed {
        Some(c) => Some(c),
        None => {
            out.error("ERR invalid cursor");
            None
        }
    }
}
