#![no_main]
//! The AOF loader's parts over arbitrary bytes: the manifest parser and the command reader.
use ferrocache_persistence::aof::{AofCommandReader, Manifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Round trip for UTF-8 manifests (file names are kept as Strings; a non-UTF-8 name is a
    // known limitation, written with replacement characters).
    if let (Ok(m), true) = (Manifest::parse(data), std::str::from_utf8(data).is_ok()) {
        // What we format must parse again (a manifest without files formats to nothing).
        let text = m.format();
        if !text.is_empty() {
            Manifest::parse(text.as_bytes()).expect("formatted manifest parses");
        }
    }
    let mut r = AofCommandReader::new(std::io::BufReader::new(data), 0);
    for _ in 0..100_000 {
        match r.next_command() {
            Ok(Some(_)) => {}
            _ => break,
        }
    }
});
