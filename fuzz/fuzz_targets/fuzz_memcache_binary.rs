#![no_main]
//! Binary protocol: parse a stream of packets, encode the matching replies.
use ferrocache_protocol::memcache::binary::{self, BinaryCommand, Status};
use ferrocache_protocol::memcache::{parse_binary, Limits};
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
        match parse_binary(&data[pos..], &limits) {
            Ok(None) => break,
            Ok(Some((req, used))) => {
                assert!(used >= binary::HEADER_LEN && used <= data.len() - pos);
                match &req.command {
                    BinaryCommand::Get { .. }
                    | BinaryCommand::GetAndTouch { .. }
                    | BinaryCommand::Touch { .. } => {
                        binary::encode_get_hit(&mut out, &req, 1, 2, b"v");
                        binary::encode_get_miss(&mut out, &req);
                    }
                    BinaryCommand::Arithmetic { .. } => {
                        binary::encode_arithmetic(&mut out, &req, 1, 1)
                    }
                    BinaryCommand::Version => binary::encode_version(&mut out, &req, b"1.6.18"),
                    _ => {
                        binary::encode_success(&mut out, &req, 1);
                        binary::encode_error(&mut out, &req, Status::NotStored);
                    }
                }
                pos += used;
            }
            Err(e) => {
                e.encode(&mut out);
                if e.close {
                    break;
                }
                assert!(e.consumed >= binary::HEADER_LEN && e.consumed <= data.len() - pos);
                pos += e.consumed;
                swallow = e.swallow;
            }
        }
    }
});
