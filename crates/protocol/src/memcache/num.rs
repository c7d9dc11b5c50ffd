//! Ports of memcached's `safe_strto*` helpers (util.c), which wrap the C
//! library's `strtol`/`strtoul`/`strtoull`. Their quirks are observable on the
//! wire, so they are reproduced exactly:
//!
//! * leading C whitespace (`isspace`) is skipped, an optional `+`/`-` sign is
//!   accepted;
//! * the number must be followed by the end of the token or a whitespace byte
//!   (`"5\tjunk"` parses as 5);
//! * `long` is 64 bits, so `safe_strtol` parses an `i64` (range errors fail)
//!   and then *truncates* to `i32` (`"4294967301"` becomes 5, verified against
//!   memcached 1.6.18 with `set k 0 0 4294967301`);
//! * `safe_strtoul` parses an unsigned 64-bit value (a leading `-` negates it
//!   modulo 2^64), rejects results that look negative as `i64` when the token
//!   contains a `-`, then truncates to `u32` (`set k 4294967296 0 1` stores
//!   flags 0 — verified).

#[inline]
pub fn c_isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Returns (negative, magnitude, overflowed) or None when no digits were found.
fn scan(s: &[u8]) -> Option<(bool, u64, bool)> {
    let mut i = 0;
    while i < s.len() && c_isspace(s[i]) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut mag: u64 = 0;
    let mut overflow = false;
    while i < s.len() && s[i].is_ascii_digit() {
        let d = (s[i] - b'0') as u64;
        match mag.checked_mul(10).and_then(|m| m.checked_add(d)) {
            Some(m) => mag = m,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start {
        return None;
    }
    // endptr must point at whitespace or the end of the (NUL terminated) token.
    if i < s.len() && !c_isspace(s[i]) {
        return None;
    }
    Some((neg, mag, overflow))
}

/// `safe_strtol`: parse as C `long` (i64) then truncate to `int32_t`.
pub fn safe_strtol(s: &[u8]) -> Option<i32> {
    let (neg, mag, overflow) = scan(s)?;
    if overflow {
        return None;
    }
    let v: i64 = if neg {
        if mag > (i64::MAX as u64) + 1 {
            return None;
        }
        (mag as i64).wrapping_neg()
    } else {
        if mag > i64::MAX as u64 {
            return None;
        }
        mag as i64
    };
    Some(v as i32)
}

fn strtoull_checked(s: &[u8]) -> Option<u64> {
    let (neg, mag, overflow) = scan(s)?;
    if overflow {
        return None;
    }
    let v = if neg { mag.wrapping_neg() } else { mag };
    if (v as i64) < 0 && s.contains(&b'-') {
        return None;
    }
    Some(v)
}

/// `safe_strtoul`: parse as C `unsigned long` (u64) then truncate to `uint32_t`.
pub fn safe_strtoul(s: &[u8]) -> Option<u32> {
    strtoull_checked(s).map(|v| v as u32)
}

/// `safe_strtoull`.
pub fn safe_strtoull(s: &[u8]) -> Option<u64> {
    strtoull_checked(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtol_quirks() {
        assert_eq!(safe_strtol(b"5"), Some(5));
        assert_eq!(safe_strtol(b"-5"), Some(-5));
        assert_eq!(safe_strtol(b"+5"), Some(5));
        assert_eq!(safe_strtol(b"\t5"), Some(5));
        assert_eq!(safe_strtol(b"5\tjunk"), Some(5));
        assert_eq!(safe_strtol(b"5x"), None);
        assert_eq!(safe_strtol(b""), None);
        assert_eq!(safe_strtol(b"-"), None);
        assert_eq!(safe_strtol(b"4294967301"), Some(5));
        assert_eq!(safe_strtol(b"9223372036854775807"), Some(-1));
        assert_eq!(safe_strtol(b"9223372036854775808"), None);
        assert_eq!(safe_strtol(b"-9223372036854775808"), Some(0));
        assert_eq!(safe_strtol(b"-9223372036854775809"), None);
    }

    #[test]
    fn strtoul_quirks() {
        assert_eq!(safe_strtoul(b"4294967296"), Some(0));
        assert_eq!(safe_strtoul(b"-0"), Some(0));
        assert_eq!(safe_strtoul(b"-1"), None);
        assert_eq!(safe_strtoul(b"+7"), Some(7));
        assert_eq!(safe_strtoull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(safe_strtoull(b"18446744073709551616"), None);
        assert_eq!(safe_strtoull(b"-18446744073709551615"), Some(1));
        assert_eq!(safe_strtoull(b"-1"), None);
        assert_eq!(safe_strtoull(b"9223372036854775808"), Some(1 << 63));
    }
}
