#![no_main]
//! Drive the text parser over arbitrary bytes like a connection loop:
//! consume requests, apply error consumption/swallow, and check invariants.
use ferrocache_protocol::memcache::{parse_text, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let mut pos = 0usize;
    let mut swallow = 0u64;
    let mut out = Vec::new();
    while pos < data.len() {
        let n = (swallow.min((data.len() - pos) as u64)) as usize;
        pos += n;
        swallow -= n as u64;
        if swallow > 0 || pos >= data.len() {
            break;
        }
        match parse_text(&data[pos..], &limits) {
            Ok(None) => break,
            Ok(Some((_req, used))) => {
                assert!(used > 0 && used <= data.len() - pos);
                pos += used;
            }
            Err(e) => {
                assert!(e.consumed > 0);
                e.encode(&mut out);
                if e.close {
                    break;
                }
                assert!(e.consumed <= data.len() - pos);
                pos += e.consumed;
                swallow = e.swallow;
            }
        }
    }
});
