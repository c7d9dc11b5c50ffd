//! Zipmap (`zipmap.c`, RDB_TYPE_HASH_ZIPMAP, Redis < 2.6) parsing and building.

use super::RdbError;

fn read_len(b: &[u8], p: &mut usize) -> Result<Option<usize>, RdbError> {
    let bad = || RdbError::Corrupt("zipmap: out of range".into());
    let first = *b.get(*p).ok_or_else(bad)?;
    if first == 255 {
        *p += 1;
        return Ok(None);
    }
    if first < 254 {
        *p += 1;
        Ok(Some(first as usize))
    } else {
        let s = b.get(*p + 1..*p + 5).ok_or_else(bad)?;
        *p += 5;
        Ok(Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize))
    }
}

/// Field/value pairs.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Parse a zipmap into field/value pairs.
pub fn parse(b: &[u8]) -> Result<Pairs, RdbError> {
    let bad = |m: &str| RdbError::Corrupt(format!("zipmap: {m}"));
    if b.len() < 2 {
        return Err(bad("too short"));
    }
    let mut p = 1usize;
    let mut out = Vec::new();
    loop {
        let klen = match read_len(b, &mut p)? {
            None => break,
            Some(l) => l,
        };
        let key = b.get(p..p + klen).ok_or_else(|| bad("key out of range"))?.to_vec();
        p += klen;
        let vlen = read_len(b, &mut p)?.ok_or_else(|| bad("missing value"))?;
        let free = *b.get(p).ok_or_else(|| bad("missing free byte"))? as usize;
        p += 1;
        let val = b.get(p..p + vlen).ok_or_else(|| bad("value out of range"))?.to_vec();
        p += vlen + free;
        out.push((key, val));
    }
    if p != b.len() {
        return Err(bad("trailing data"));
    }
    Ok(out)
}

fn push_len(out: &mut Vec<u8>, l: usize) {
    if l < 254 {
        out.push(l as u8);
    } else {
        out.push(254);
        out.extend_from_slice(&(l as u32).to_le_bytes());
    }
}

/// Build a zipmap (no free space).
pub fn build(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![pairs.len().min(254) as u8];
    for (k, v) in pairs {
        push_len(&mut out, k.len());
        out.extend_from_slice(k);
        push_len(&mut out, v.len());
        out.push(0);
        out.extend_from_slice(v);
    }
    out.push(255);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let pairs =
            vec![(b"a".to_vec(), b"1".to_vec()), (vec![b'k'; 300], vec![b'v'; 1000]), (b"".to_vec(), b"".to_vec())];
        assert_eq!(parse(&build(&pairs)).unwrap(), pairs);
    }
}
