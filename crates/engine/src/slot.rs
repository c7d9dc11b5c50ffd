//! Key → hash slot, as Redis's keyHashSlot: CRC16 (XMODEM, crc16.c) of the key, or of the
//! text between its first `{` and the next `}` when that is non-empty, mod 16384.

/// Number of hash slots in a Redis Cluster.
pub const SLOTS: usize = 16384;

/// The CRC16-CCITT (XMODEM) table of Redis's crc16.c, built at compile time (polynomial 0x1021).
static TABLE: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut b = 0;
        while b < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            b += 1;
        }
        t[i] = crc;
        i += 1;
    }
    t
};

pub fn crc16(buf: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in buf {
        crc = (crc << 8) ^ TABLE[(((crc >> 8) as u8) ^ b) as usize];
    }
    crc
}

/// The hash slot of `key` (hash tags honoured).
pub fn key_slot(key: &[u8]) -> u16 {
    if let Some(s) = memchr::memchr(b'{', key) {
        if let Some(len) = memchr::memchr(b'}', &key[s + 1..]) {
            if len > 0 {
                return crc16(&key[s + 1..s + 1 + len]) & 0x3FFF;
            }
        }
    }
    crc16(key) & 0x3FFF
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_redis() {
        // crc16.c's test vector.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"a{foo}b"), 12182);
        assert_eq!(key_slot(b"{}foo"), crc16(b"{}foo") & 0x3FFF);
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") & 0x3FFF);
        assert_eq!(key_slot(b"foo{{bar}}zap"), crc16(b"{bar") & 0x3FFF);
    }
}
