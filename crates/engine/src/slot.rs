//! Key → hash slot, as Redis's keyHashSlot: CRC16 (XMODEM, crc16.c) of the key, or of the
//! text between its first `{` and the next `}` when that is non-empty, mod 16384.

/// Number of hash slots in a Redis Cluster.
pub const SLOTS: usize = 16384;

/// CRC16-CCITT (XMODEM), Redis's crc16.c, sixteen bytes per step (slice-by-16 tables built at
/// compile time): in cluster mode every request hashes its keys, and the byte-at-a-time table
/// walk was a visible share of a pipelined GET's CPU.
const CRC16: crc::Crc<u16, crc::Table<16>> = crc::Crc::<u16, crc::Table<16>>::new(&crc::CRC_16_XMODEM);

pub fn crc16(buf: &[u8]) -> u16 {
    CRC16.checksum(buf)
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
        // Against crc16.c's byte-at-a-time loop, for every length around the 16-byte steps.
        let data: Vec<u8> = (0..100u32).map(|i| (i * 37 + 11) as u8).collect();
        for n in 0..data.len() {
            let mut crc: u16 = 0;
            for &b in &data[..n] {
                crc ^= (b as u16) << 8;
                for _ in 0..8 {
                    crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
                }
            }
            assert_eq!(crc16(&data[..n]), crc, "length {n}");
        }
    }
}
