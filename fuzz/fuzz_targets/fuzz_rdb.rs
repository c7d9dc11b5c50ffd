#![no_main]
//! The RDB loader over arbitrary bytes: a whole file (header, opcodes, values, checksum) and a
//! DUMP payload. Must return errors, never panic or loop.
use ferrocache_persistence::rdb::{restore_payload, RdbReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = restore_payload(data);
    if let Ok(r) = RdbReader::new(std::io::Cursor::new(data)) {
        for (i, ev) in r.enumerate() {
            if ev.is_err() || i > 100_000 {
                break;
            }
        }
    }
});
