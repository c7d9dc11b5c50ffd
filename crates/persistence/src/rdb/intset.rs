//! Intset (`intset.c`) encoding and parsing.

use super::RdbError;

/// Encode sorted, de-duplicated integers with the smallest width that fits
/// all of them (what a freshly built intset looks like).
pub fn build(sorted: &[i64]) -> Vec<u8> {
    let width: usize = if sorted.iter().all(|&v| (i16::MIN as i64..=i16::MAX as i64).contains(&v)) {
        2
    } else if sorted.iter().all(|&v| (i32::MIN as i64..=i32::MAX as i64).contains(&v)) {
        4
    } else {
        8
    };
    let mut out = Vec::with_capacity(8 + width * sorted.len());
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(sorted.len() as u32).to_le_bytes());
    for &v in sorted {
        match width {
            2 => out.extend_from_slice(&(v as i16).to_le_bytes()),
            4 => out.extend_from_slice(&(v as i32).to_le_bytes()),
            _ => out.extend_from_slice(&v.to_le_bytes()),
        }
    }
    out
}

/// Parse and validate an intset blob.
pub fn parse(b: &[u8]) -> Result<Vec<i64>, RdbError> {
    let bad = |m: &str| RdbError::Corrupt(format!("intset: {m}"));
    if b.len() < 8 {
        return Err(bad("too short"));
    }
    let width = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let len = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err(bad("invalid encoding"));
    }
    if len.checked_mul(width).and_then(|n| n.checked_add(8)) != Some(b.len()) {
        return Err(bad("size mismatch"));
    }
    let mut out = Vec::with_capacity(len);
    for c in b[8..].chunks_exact(width) {
        let v = match width {
            2 => i16::from_le_bytes([c[0], c[1]]) as i64,
            4 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
            _ => i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
        };
        if let Some(&last) = out.last() {
            if v <= last {
                return Err(bad("not sorted or duplicate"));
            }
        }
        out.push(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_widths() {
        for set in [vec![1i64, 2, 3], vec![-70000, 5], vec![i64::MIN, 0, i64::MAX], vec![]] {
            assert_eq!(parse(&build(&set)).unwrap(), set);
        }
        assert_eq!(build(&[1, 2]).len(), 8 + 4);
        assert_eq!(build(&[1, 70000]).len(), 8 + 8);
    }
}
