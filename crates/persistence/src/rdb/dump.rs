//! DUMP / RESTORE payloads (`createDumpPayload` / `verifyDumpPayload` in
//! cluster.c): `type byte + value + RDB version (u16 LE) + CRC64 (u64 LE)`.

use super::crc64::crc64;
use super::decode::{read_u8, read_value};
use super::encode::encode_value;
use super::{EncodeOptions, EncodingHint, RdbError, RdbValue, RDB_VERSION};

/// DUMP payload of `v`, byte-identical to what redis-server 7.0 produces
/// with default settings for a key built by the usual write commands.
pub fn dump_payload(v: &RdbValue) -> Vec<u8> {
    dump_payload_with(v, EncodingHint::Auto, &EncodeOptions::default())
}

/// DUMP payload with an explicit encoding hint and options.
pub fn dump_payload_with(v: &RdbValue, hint: EncodingHint, opts: &EncodeOptions) -> Vec<u8> {
    let mut out = Vec::new();
    let pos = out.len();
    out.push(0);
    let ty = encode_value(&mut out, v, hint, opts);
    out[pos] = ty;
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// `verifyDumpPayload`: footer version must be <= 10 and the CRC must match.
/// Returns the RDB version of the payload.
pub fn verify_dump_payload(p: &[u8]) -> Result<u16, RdbError> {
    if p.len() < 10 {
        return Err(RdbError::BadDumpPayload);
    }
    let footer = &p[p.len() - 10..];
    let ver = u16::from_le_bytes([footer[0], footer[1]]);
    if ver > RDB_VERSION {
        return Err(RdbError::BadDumpPayload);
    }
    let crc = crc64(0, &p[..p.len() - 8]);
    if crc.to_le_bytes() != footer[2..] {
        return Err(RdbError::BadDumpPayload);
    }
    Ok(ver)
}

/// Verify and decode a DUMP payload (what RESTORE does). Use
/// [`RdbError::redis_reply`] for the error text Redis would send.
pub fn restore_payload(p: &[u8]) -> Result<RdbValue, RdbError> {
    verify_dump_payload(p)?;
    let mut body = &p[..p.len() - 10];
    let ty = read_u8(&mut body)?;
    read_value(&mut body, ty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_payload_bytes() {
        // redis> SET k hello ; DUMP k
        let p = dump_payload(&RdbValue::String(b"hello".to_vec()));
        assert_eq!(&p[..9], b"\x00\x05hello\x0a\x00");
        assert_eq!(p.len(), 17);
        assert_eq!(restore_payload(&p).unwrap(), RdbValue::String(b"hello".to_vec()));
    }

    #[test]
    fn rejects_bad_payloads() {
        let mut p = dump_payload(&RdbValue::String(b"hello".to_vec()));
        let n = p.len();
        p[n - 1] ^= 1;
        assert!(matches!(restore_payload(&p), Err(RdbError::BadDumpPayload)));
        assert_eq!(restore_payload(&p).unwrap_err().redis_reply(), "ERR DUMP payload version or checksum are wrong");
        assert!(matches!(restore_payload(&[1, 2, 3]), Err(RdbError::BadDumpPayload)));
        // version 11 with a correct CRC is still rejected
        let mut q = vec![0u8, 1, b'a', 11, 0];
        let crc = crc64(0, &q);
        q.extend_from_slice(&crc.to_le_bytes());
        assert!(matches!(restore_payload(&q), Err(RdbError::BadDumpPayload)));
        // garbage body with correct footer -> bad data format
        let mut g = vec![42u8, 1, 2, 10, 0];
        let crc = crc64(0, &g);
        g.extend_from_slice(&crc.to_le_bytes());
        let e = restore_payload(&g).unwrap_err();
        assert_eq!(e.redis_reply(), "ERR Bad data format");
    }
}
