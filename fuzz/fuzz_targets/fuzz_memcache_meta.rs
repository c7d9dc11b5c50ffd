#![no_main]
//! Meta commands: prefix the input with a meta command so the fuzzer spends
//! its time in flag parsing, then exercise the reply encoders.
use ferrocache_protocol::memcache::meta::{self, MetaArithResult, MetaItem, MetaStoreStatus};
use ferrocache_protocol::memcache::{parse_text, Limits, MetaRequest, TextRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let cmds: [&[u8]; 6] = [b"mg ", b"ms ", b"md ", b"ma ", b"me ", b"mn "];
    let mut buf = cmds[(data[0] % 6) as usize].to_vec();
    buf.extend_from_slice(&data[1..]);
    let mut out = Vec::new();
    match parse_text(&buf, &Limits::default()) {
        Ok(Some((TextRequest::Meta(m), used))) => {
            assert!(used <= buf.len());
            match m {
                MetaRequest::Get(a) => {
                    let item = MetaItem {
                        key: &a.key,
                        key_binary: a.flags.base64_key,
                        client_flags: 1,
                        cas: 2,
                        ttl_remaining: Some(3),
                        last_access: 4,
                        fetched: true,
                        token_sent: true,
                        stale: true,
                        win: true,
                    };
                    meta::encode_mg_hit(&mut out, &a, &item, b"v");
                    meta::encode_mg_miss(&mut out, &a);
                }
                MetaRequest::Set { args, data, .. } => {
                    assert!(used >= data.len() + 2);
                    meta::encode_ms(&mut out, &args, MetaStoreStatus::Stored, 1);
                }
                MetaRequest::Delete(a) => {
                    meta::encode_md(&mut out, &a, meta::MetaDeleteStatus::NotFound)
                }
                MetaRequest::Arithmetic { args, .. } => meta::encode_ma(
                    &mut out,
                    &args,
                    MetaArithResult::Done {
                        value: 1,
                        cas: 1,
                        ttl_remaining: None,
                        created: false,
                    },
                ),
                MetaRequest::Noop => meta::encode_mn(&mut out),
                MetaRequest::Debug { key, base64 } => {
                    meta::encode_me_hit(&mut out, &key, base64, None, 0, 0, false, 1, 1)
                }
            }
        }
        Ok(_) => {}
        Err(e) => e.encode(&mut out),
    }
});
