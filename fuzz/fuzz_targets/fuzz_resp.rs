#![no_main]
//! Drive the RESP request parser over arbitrary bytes like a connection loop, and check:
//! every step consumes at least one byte and never more than it was given; a stream fed in two
//! pieces (split at a point chosen by the first input byte) yields the same requests and the
//! same error as the stream fed whole; every parsed request re-encodes as RESP and parses back
//! to the same arguments.
use ferrocache_protocol::resp::{OwnedArgs, ParseLimits, Parsed, RespParser};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq)]
enum Outcome {
    Requests(Vec<Vec<Vec<u8>>>),
    Error(Vec<Vec<Vec<u8>>>, String),
}

/// Parse `data` as a connection would, given the bytes in `pieces` cumulative prefixes.
fn run(data: &[u8], cuts: &[usize], limits: &ParseLimits) -> Outcome {
    let mut parser = RespParser::new();
    let mut reqs = Vec::new();
    let mut pos = 0usize;
    for &end in cuts.iter().chain(std::iter::once(&data.len())) {
        let avail = &data[..end.max(pos)];
        loop {
            if pos >= avail.len() {
                break;
            }
            match parser.parse(&avail[pos..], limits) {
                Ok(Parsed::Request { consumed }) => {
                    assert!(consumed > 0 && consumed <= avail.len() - pos, "consumed {} of {}", consumed, avail.len() - pos);
                    let args = parser.args(&avail[pos..]);
                    if !args.is_empty() {
                        reqs.push(args.iter().map(|a| a.to_vec()).collect::<Vec<_>>());
                    }
                    pos += consumed;
                }
                Ok(Parsed::Incomplete { .. }) => break,
                Err(e) => return Outcome::Error(reqs, e.0.to_string()),
            }
        }
    }
    Outcome::Requests(reqs)
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let limits = ParseLimits { proto_max_bulk_len: 1024, auth_required: data[0] & 0x80 != 0 };
    let body = &data[1..];
    let whole = run(body, &[], &limits);
    let cut = if body.is_empty() { 0 } else { data[0] as usize % (body.len() + 1) };
    let split = run(body, &[cut], &limits);
    assert_eq!(whole, split, "split at {} changes the outcome", cut);
    let reqs = match &whole {
        Outcome::Requests(r) | Outcome::Error(r, _) => r,
    };
    for r in reqs {
        let o = OwnedArgs::from_slices(r);
        let mut enc = Vec::new();
        o.encode_resp(&mut enc);
        let back = run(&enc, &[], &ParseLimits { proto_max_bulk_len: i64::MAX, auth_required: false });
        assert_eq!(back, Outcome::Requests(vec![r.clone()]));
    }
});
