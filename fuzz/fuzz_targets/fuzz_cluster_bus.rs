#![no_main]
//! The cluster bus decoder (Redis 7.0's clusterMsg) over arbitrary bytes, as a bus link feeds
//! it: `frame_len` on the first 8 bytes, `decode` on a whole frame. Nothing may panic; a decoded
//! message re-encodes to a frame of its announced length that decodes again with the same
//! header numbers, slot bitmap, gossip count and FAIL target, and encoding is a fixed point from
//! the second round on (names are NUL-padded text: the first round may normalise them).
use ferrocache_node::cluster::bus::Msg;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Msg::frame_len(data);
    // As the link does: the frame is what the header announces, when that much arrived.
    let frame = match Msg::frame_len(data) {
        Some(n) if n <= data.len() => &data[..n],
        _ => data,
    };
    let Ok(m) = Msg::decode(frame) else { return };
    let e1 = m.encode();
    assert_eq!(Msg::frame_len(&e1), Some(e1.len()));
    let m2 = Msg::decode(&e1).expect("an encoded message decodes");
    assert_eq!(
        (m2.kind, m2.port, m2.current_epoch, m2.config_epoch, m2.offset, m2.pport, m2.cport, m2.flags, m2.state),
        (m.kind, m.port, m.current_epoch, m.config_epoch, m.offset, m.pport, m.cport, m.flags, m.state)
    );
    assert_eq!(m2.myslots, m.myslots);
    assert_eq!(m2.gossip.len(), m.gossip.len());
    let e2 = m2.encode();
    let m3 = Msg::decode(&e2).expect("a re-encoded message decodes");
    assert_eq!(m3.encode(), e2, "encoding is not stable after one round");
});
