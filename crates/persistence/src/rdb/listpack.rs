//! Listpack (`listpack.c`) encoding and parsing.

use super::util::string_to_i64;
use super::RdbError;

const HDR_SIZE: usize = 6;
const EOF: u8 = 0xff;

/// One listpack element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LpEntry {
    Int(i64),
    Str(Vec<u8>),
}

impl LpEntry {
    /// The element as the bytes Redis would return for it.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            LpEntry::Int(v) => v.to_string().into_bytes(),
            LpEntry::Str(s) => s,
        }
    }

    /// Integer value (strings that are canonical integers are accepted, like
    /// `lpGetIntegerIfValid`).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            LpEntry::Int(v) => Some(*v),
            LpEntry::Str(s) => string_to_i64(s),
        }
    }
}

/// Size in bytes of the backlen for an entry of `l` bytes (`lpEncodeBacklen`).
fn backlen_size(l: u64) -> usize {
    if l <= 127 {
        1
    } else if l < 16383 {
        2
    } else if l < 2097151 {
        3
    } else if l < 268435455 {
        4
    } else {
        5
    }
}

fn push_backlen(out: &mut Vec<u8>, l: u64) {
    match backlen_size(l) {
        1 => out.push(l as u8),
        2 => out.extend_from_slice(&[(l >> 7) as u8, ((l & 127) | 128) as u8]),
        3 => out.extend_from_slice(&[(l >> 14) as u8, (((l >> 7) & 127) | 128) as u8, ((l & 127) | 128) as u8]),
        4 => out.extend_from_slice(&[
            (l >> 21) as u8,
            (((l >> 14) & 127) | 128) as u8,
            (((l >> 7) & 127) | 128) as u8,
            ((l & 127) | 128) as u8,
        ]),
        _ => out.extend_from_slice(&[
            (l >> 28) as u8,
            (((l >> 21) & 127) | 128) as u8,
            (((l >> 14) & 127) | 128) as u8,
            (((l >> 7) & 127) | 128) as u8,
            ((l & 127) | 128) as u8,
        ]),
    }
}

fn encode_int(out: &mut Vec<u8>, v: i64) {
    let start = out.len();
    if (0..=127).contains(&v) {
        out.push(v as u8);
    } else if (-4096..=4095).contains(&v) {
        let u = if v < 0 { (1i64 << 13) + v } else { v } as u64;
        out.push(((u >> 8) as u8) | 0xc0);
        out.push(u as u8);
    } else if (-32768..=32767).contains(&v) {
        out.push(0xf1);
        out.extend_from_slice(&(v as i16).to_le_bytes());
    } else if (-8388608..=8388607).contains(&v) {
        out.push(0xf2);
        out.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
    } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
        out.push(0xf3);
        out.extend_from_slice(&(v as i32).to_le_bytes());
    } else {
        out.push(0xf4);
        out.extend_from_slice(&v.to_le_bytes());
    }
    let l = (out.len() - start) as u64;
    push_backlen(out, l);
}

fn encode_str(out: &mut Vec<u8>, s: &[u8]) {
    let start = out.len();
    let len = s.len();
    if len < 64 {
        out.push(0x80 | len as u8);
    } else if len < 4096 {
        out.push(0xe0 | (len >> 8) as u8);
        out.push(len as u8);
    } else {
        out.push(0xf0);
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }
    out.extend_from_slice(s);
    let l = (out.len() - start) as u64;
    push_backlen(out, l);
}

/// Encoded size (entry + backlen) of an integer element.
pub fn int_entry_size(v: i64) -> usize {
    let mut tmp = Vec::with_capacity(16);
    encode_int(&mut tmp, v);
    tmp.len()
}

/// Incremental listpack builder, producing exactly the bytes Redis's
/// `lpAppend` / `lpAppendInteger` produce.
#[derive(Debug, Clone, Default)]
pub struct ListpackBuilder {
    body: Vec<u8>,
    count: usize,
}

impl ListpackBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// `lpAppend`: strings that look like integers are stored as integers.
    pub fn push(&mut self, s: &[u8]) {
        match string_to_i64(s) {
            Some(v) => encode_int(&mut self.body, v),
            None => encode_str(&mut self.body, s),
        }
        self.count += 1;
    }

    /// `lpAppendInteger`.
    pub fn push_int(&mut self, v: i64) {
        encode_int(&mut self.body, v);
        self.count += 1;
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Total listpack size in bytes (`lpBytes`).
    pub fn bytes(&self) -> usize {
        HDR_SIZE + self.body.len() + 1
    }

    /// Append all elements of `other`.
    pub fn append(&mut self, other: ListpackBuilder) {
        self.body.extend_from_slice(&other.body);
        self.count += other.count;
    }

    pub fn finish(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes());
        out.extend_from_slice(&(self.bytes() as u32).to_le_bytes());
        let n = if self.count < 65535 { self.count as u16 } else { 65535 };
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&self.body);
        out.push(EOF);
        out
    }
}

/// Build a listpack from elements (with `lpAppend` semantics).
pub fn build<'a, I: IntoIterator<Item = &'a [u8]>>(items: I) -> Vec<u8> {
    let mut b = ListpackBuilder::new();
    for i in items {
        b.push(i);
    }
    b.finish()
}

fn corrupt(msg: &str) -> RdbError {
    RdbError::Corrupt(format!("listpack: {msg}"))
}

/// Parse and validate a listpack.
pub fn parse(lp: &[u8]) -> Result<Vec<LpEntry>, RdbError> {
    if lp.len() < HDR_SIZE + 1 {
        return Err(corrupt("too short"));
    }
    let total = u32::from_le_bytes([lp[0], lp[1], lp[2], lp[3]]) as usize;
    if total != lp.len() {
        return Err(corrupt("header size mismatch"));
    }
    let numele = u16::from_le_bytes([lp[4], lp[5]]);
    let mut p = HDR_SIZE;
    let mut out = Vec::new();
    let need = |p: usize, n: usize| -> Result<(), RdbError> {
        if p + n > lp.len() - 1 {
            Err(corrupt("entry out of range"))
        } else {
            Ok(())
        }
    };
    loop {
        if p >= lp.len() {
            return Err(corrupt("missing terminator"));
        }
        let b = lp[p];
        if b == EOF {
            break;
        }
        let (entry, size) = if b & 0x80 == 0 {
            (LpEntry::Int((b & 0x7f) as i64), 1)
        } else if b & 0xc0 == 0x80 {
            let len = (b & 0x3f) as usize;
            need(p, 1 + len)?;
            (LpEntry::Str(lp[p + 1..p + 1 + len].to_vec()), 1 + len)
        } else if b & 0xe0 == 0xc0 {
            need(p, 2)?;
            let u = (((b & 0x1f) as i64) << 8) | lp[p + 1] as i64;
            let v = if u >= 1 << 12 { u - (1 << 13) } else { u };
            (LpEntry::Int(v), 2)
        } else if b & 0xf0 == 0xe0 {
            need(p, 2)?;
            let len = (((b & 0x0f) as usize) << 8) | lp[p + 1] as usize;
            need(p, 2 + len)?;
            (LpEntry::Str(lp[p + 2..p + 2 + len].to_vec()), 2 + len)
        } else {
            match b {
                0xf0 => {
                    need(p, 5)?;
                    let len = u32::from_le_bytes([lp[p + 1], lp[p + 2], lp[p + 3], lp[p + 4]]) as usize;
                    need(p, 5 + len)?;
                    (LpEntry::Str(lp[p + 5..p + 5 + len].to_vec()), 5 + len)
                }
                0xf1 => {
                    need(p, 3)?;
                    (LpEntry::Int(i16::from_le_bytes([lp[p + 1], lp[p + 2]]) as i64), 3)
                }
                0xf2 => {
                    need(p, 4)?;
                    let u = i32::from_le_bytes([0, lp[p + 1], lp[p + 2], lp[p + 3]]) >> 8;
                    (LpEntry::Int(u as i64), 4)
                }
                0xf3 => {
                    need(p, 5)?;
                    let v = i32::from_le_bytes([lp[p + 1], lp[p + 2], lp[p + 3], lp[p + 4]]);
                    (LpEntry::Int(v as i64), 5)
                }
                0xf4 => {
                    need(p, 9)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(&lp[p + 1..p + 9]);
                    (LpEntry::Int(i64::from_le_bytes(a)), 9)
                }
                _ => return Err(corrupt("invalid entry encoding")),
            }
        };
        let bl = backlen_size(size as u64);
        need(p, size + bl)?;
        // Validate the backlen.
        let mut tmp = Vec::with_capacity(5);
        push_backlen(&mut tmp, size as u64);
        if lp[p + size..p + size + bl] != tmp[..] {
            return Err(corrupt("invalid backlen"));
        }
        p += size + bl;
        out.push(entry);
    }
    if p != lp.len() - 1 {
        return Err(corrupt("data after terminator"));
    }
    if numele != 65535 && numele as usize != out.len() {
        return Err(corrupt("element count mismatch"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_roundtrip() {
        let vals = [
            0i64,
            1,
            127,
            128,
            -1,
            -4096,
            4095,
            4096,
            -4097,
            32767,
            -32768,
            32768,
            8388607,
            -8388608,
            8388608,
            i32::MAX as i64,
            i32::MIN as i64,
            i32::MAX as i64 + 1,
            i64::MAX,
            i64::MIN,
        ];
        let mut b = ListpackBuilder::new();
        for v in vals {
            b.push_int(v);
        }
        let lp = b.finish();
        let parsed = parse(&lp).unwrap();
        let got: Vec<i64> = parsed.iter().map(|e| e.as_i64().unwrap()).collect();
        assert_eq!(got, vals.to_vec());
    }

    #[test]
    fn strings_roundtrip() {
        let strs: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"a".to_vec(),
            vec![b'x'; 63],
            vec![b'x'; 64],
            vec![b'y'; 4095],
            vec![b'z'; 4096],
            vec![b'w'; 20000],
            b"-0".to_vec(),
            b"007".to_vec(),
        ];
        let lp = build(strs.iter().map(|s| s.as_slice()));
        let parsed = parse(&lp).unwrap();
        let got: Vec<Vec<u8>> = parsed.into_iter().map(|e| e.into_bytes()).collect();
        assert_eq!(got, strs);
    }

    #[test]
    fn known_bytes() {
        // HSET h f v  ->  listpack of "f","v"
        let lp = build([&b"f"[..], &b"v"[..]]);
        assert_eq!(lp, vec![13, 0, 0, 0, 2, 0, 0x81, b'f', 2, 0x81, b'v', 2, 0xff]);
    }
}
