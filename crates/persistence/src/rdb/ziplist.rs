//! Ziplist (`ziplist.c`) parsing, plus a builder used to produce legacy
//! encodings (tests, and anyone who needs to emit pre-7.0 RDB types).

use super::listpack::LpEntry;
use super::util::string_to_i64;
use super::RdbError;

fn corrupt(msg: &str) -> RdbError {
    RdbError::Corrupt(format!("ziplist: {msg}"))
}

/// Parse and validate a ziplist. Elements are returned as [`LpEntry`].
pub fn parse(zl: &[u8]) -> Result<Vec<LpEntry>, RdbError> {
    if zl.len() < 11 {
        return Err(corrupt("too short"));
    }
    let zlbytes = u32::from_le_bytes([zl[0], zl[1], zl[2], zl[3]]) as usize;
    if zlbytes != zl.len() {
        return Err(corrupt("header size mismatch"));
    }
    let zllen = u16::from_le_bytes([zl[8], zl[9]]);
    let end = zl.len() - 1;
    if zl[end] != 0xff {
        return Err(corrupt("missing terminator"));
    }
    let mut p = 10usize;
    let mut out = Vec::new();
    let mut prev_size = 0usize;
    let need = |p: usize, n: usize| -> Result<(), RdbError> {
        if p + n > end {
            Err(corrupt("entry out of range"))
        } else {
            Ok(())
        }
    };
    while p < end {
        let start = p;
        // prevlen
        let prevlen = if zl[p] < 254 {
            p += 1;
            zl[p - 1] as usize
        } else {
            need(p, 5)?;
            let v = u32::from_le_bytes([zl[p + 1], zl[p + 2], zl[p + 3], zl[p + 4]]) as usize;
            p += 5;
            v
        };
        if prevlen != prev_size {
            return Err(corrupt("prevlen mismatch"));
        }
        need(p, 1)?;
        let b = zl[p];
        let entry = match b >> 6 {
            0 => {
                let len = (b & 0x3f) as usize;
                need(p, 1 + len)?;
                let e = LpEntry::Str(zl[p + 1..p + 1 + len].to_vec());
                p += 1 + len;
                e
            }
            1 => {
                need(p, 2)?;
                let len = (((b & 0x3f) as usize) << 8) | zl[p + 1] as usize;
                need(p, 2 + len)?;
                let e = LpEntry::Str(zl[p + 2..p + 2 + len].to_vec());
                p += 2 + len;
                e
            }
            2 => {
                if b != 0x80 {
                    return Err(corrupt("bad string encoding"));
                }
                need(p, 5)?;
                let len = u32::from_be_bytes([zl[p + 1], zl[p + 2], zl[p + 3], zl[p + 4]]) as usize;
                need(p, 5 + len)?;
                let e = LpEntry::Str(zl[p + 5..p + 5 + len].to_vec());
                p += 5 + len;
                e
            }
            _ => {
                let (v, n) = match b {
                    0xc0 => {
                        need(p, 3)?;
                        (i16::from_le_bytes([zl[p + 1], zl[p + 2]]) as i64, 3)
                    }
                    0xd0 => {
                        need(p, 5)?;
                        (i32::from_le_bytes([zl[p + 1], zl[p + 2], zl[p + 3], zl[p + 4]]) as i64, 5)
                    }
                    0xe0 => {
                        need(p, 9)?;
                        let mut a = [0u8; 8];
                        a.copy_from_slice(&zl[p + 1..p + 9]);
                        (i64::from_le_bytes(a), 9)
                    }
                    0xf0 => {
                        need(p, 4)?;
                        ((i32::from_le_bytes([0, zl[p + 1], zl[p + 2], zl[p + 3]]) >> 8) as i64, 4)
                    }
                    0xfe => {
                        need(p, 2)?;
                        (zl[p + 1] as i8 as i64, 2)
                    }
                    0xf1..=0xfd => (((b & 0x0f) as i64) - 1, 1),
                    _ => return Err(corrupt("bad integer encoding")),
                };
                p += n;
                LpEntry::Int(v)
            }
        };
        prev_size = p - start;
        out.push(entry);
    }
    if zllen != u16::MAX && zllen as usize != out.len() {
        return Err(corrupt("element count mismatch"));
    }
    Ok(out)
}

/// Build a ziplist the way `ziplistPush(..., ZIPLIST_TAIL)` does.
pub fn build<'a, I: IntoIterator<Item = &'a [u8]>>(items: I) -> Vec<u8> {
    let mut body = Vec::new();
    let mut prev_size = 0usize;
    let mut count = 0usize;
    let mut tail_off = 10usize;
    for s in items {
        let start = body.len();
        tail_off = 10 + start;
        if prev_size < 254 {
            body.push(prev_size as u8);
        } else {
            body.push(254);
            body.extend_from_slice(&(prev_size as u32).to_le_bytes());
        }
        match string_to_i64(s).filter(|_| s.len() <= 32) {
            Some(v) => {
                if (0..=12).contains(&v) {
                    body.push(0xf1 + v as u8);
                } else if (i8::MIN as i64..=i8::MAX as i64).contains(&v) {
                    body.push(0xfe);
                    body.push(v as i8 as u8);
                } else if (i16::MIN as i64..=i16::MAX as i64).contains(&v) {
                    body.push(0xc0);
                    body.extend_from_slice(&(v as i16).to_le_bytes());
                } else if (-8388608..=8388607).contains(&v) {
                    body.push(0xf0);
                    body.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
                } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
                    body.push(0xd0);
                    body.extend_from_slice(&(v as i32).to_le_bytes());
                } else {
                    body.push(0xe0);
                    body.extend_from_slice(&v.to_le_bytes());
                }
            }
            None => {
                let len = s.len();
                if len <= 0x3f {
                    body.push(len as u8);
                } else if len <= 0x3fff {
                    body.push(0x40 | (len >> 8) as u8);
                    body.push(len as u8);
                } else {
                    body.push(0x80);
                    body.extend_from_slice(&(len as u32).to_be_bytes());
                }
                body.extend_from_slice(s);
            }
        }
        prev_size = body.len() - start;
        count += 1;
    }
    let total = 10 + body.len() + 1;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out.extend_from_slice(&(tail_off as u32).to_le_bytes());
    out.extend_from_slice(&(count.min(65535) as u16).to_le_bytes());
    out.extend_from_slice(&body);
    out.push(0xff);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let items: Vec<Vec<u8>> = vec![
            b"hello".to_vec(),
            b"0".to_vec(),
            b"12".to_vec(),
            b"13".to_vec(),
            b"-100".to_vec(),
            b"30000".to_vec(),
            b"8000000".to_vec(),
            b"2000000000".to_vec(),
            b"9000000000".to_vec(),
            vec![b'a'; 300],
            vec![b'b'; 20000],
            b"x".to_vec(),
        ];
        let zl = build(items.iter().map(|v| v.as_slice()));
        let got: Vec<Vec<u8>> = parse(&zl).unwrap().into_iter().map(|e| e.into_bytes()).collect();
        assert_eq!(got, items);
    }

    #[test]
    fn empty() {
        let zl = build(std::iter::empty());
        assert_eq!(zl.len(), 11);
        assert!(parse(&zl).unwrap().is_empty());
    }
}
