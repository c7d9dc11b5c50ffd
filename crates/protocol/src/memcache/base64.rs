//! Base64 exactly as memcached's base64.c (used for meta `b` keys).
//!
//! Decoding skips bytes outside the alphabet, requires a non-zero multiple of
//! four alphabet bytes, and stops after the first block containing padding.

const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn dvalue(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        b'=' => Some(0),
        _ => None,
    }
}

/// Encode (standard alphabet, `=` padding, no line breaks).
pub fn encode_into(src: &[u8], out: &mut Vec<u8>) {
    let mut chunks = src.chunks_exact(3);
    for c in &mut chunks {
        out.push(TABLE[(c[0] >> 2) as usize]);
        out.push(TABLE[(((c[0] & 0x03) << 4) | (c[1] >> 4)) as usize]);
        out.push(TABLE[(((c[1] & 0x0f) << 2) | (c[2] >> 6)) as usize]);
        out.push(TABLE[(c[2] & 0x3f) as usize]);
    }
    let rem = chunks.remainder();
    if !rem.is_empty() {
        out.push(TABLE[(rem[0] >> 2) as usize]);
        if rem.len() == 1 {
            out.push(TABLE[((rem[0] & 0x03) << 4) as usize]);
            out.push(b'=');
        } else {
            out.push(TABLE[(((rem[0] & 0x03) << 4) | (rem[1] >> 4)) as usize]);
            out.push(TABLE[((rem[1] & 0x0f) << 2) as usize]);
        }
        out.push(b'=');
    }
}

/// Decode; `None` where memcached's `base64_decode` returns 0 (failure).
pub fn decode(src: &[u8]) -> Option<Vec<u8>> {
    let count = src.iter().filter(|&&c| dvalue(c).is_some()).count();
    if count == 0 || count % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(count / 4 * 3);
    let mut block = [0u8; 4];
    let mut n = 0;
    let mut pad = 0;
    for &c in src {
        let Some(v) = dvalue(c) else { continue };
        if c == b'=' {
            pad += 1;
        }
        block[n] = v;
        n += 1;
        if n == 4 {
            out.push((block[0] << 2) | (block[1] >> 4));
            out.push((block[1] << 4) | (block[2] >> 2));
            out.push((block[2] << 6) | block[3]);
            n = 0;
            if pad > 0 {
                match pad {
                    1 => {
                        out.pop();
                    }
                    2 => {
                        out.pop();
                        out.pop();
                    }
                    _ => return None,
                }
                break;
            }
        }
    }
    if out.is_empty() {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_quirks() {
        let mut o = Vec::new();
        encode_into(b"foo", &mut o);
        assert_eq!(o, b"Zm9v");
        o.clear();
        encode_into(b"fo", &mut o);
        assert_eq!(o, b"Zm8=");
        o.clear();
        encode_into(b"f", &mut o);
        assert_eq!(o, b"Zg==");
        assert_eq!(decode(b"Zm9v").unwrap(), b"foo");
        assert_eq!(decode(b"Zm8=").unwrap(), b"fo");
        assert_eq!(decode(b"Zg==").unwrap(), b"f");
        assert_eq!(decode(b"k"), None); // verified: `mg k b` -> error decoding key
        assert_eq!(decode(b"a==="), None); // verified: `mg a=== b`
        assert_eq!(decode(b"Zm!9v"), Some(b"foo".to_vec())); // junk skipped
        assert_eq!(decode(b"Zg==Zm9v"), Some(b"f".to_vec())); // stops at padding
        for len in 0..40u8 {
            let src: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37)).collect();
            let mut e = Vec::new();
            encode_into(&src, &mut e);
            if !src.is_empty() {
                assert_eq!(decode(&e).unwrap(), src);
            }
        }
    }
}
