#![no_main]
//! The AOF loader's parts over arbitrary bytes: the manifest parser and the command reader.
use ferrocache_persistence::aof::{AofCommandReader, Manifest, MANIFEST_MAX_LINE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Names with control characters do not round-trip yet (the formatter does not quote them as
    // Redis's sdscatrepr does): checked for printable ASCII manifests only.
    let printable = data.iter().all(|&c| c == b'\n' || c == b'\r' || (0x20..0x7f).contains(&c));
    if let (Ok(m), true) = (Manifest::parse(data), printable) {
        // What we format must parse again (a manifest without files formats to nothing).
        // Quoting can lengthen a line past MANIFEST_MAX_LINE; Redis would not read such a line back
        // either, so only manifests whose formatted lines fit are checked.
        let text = m.format();
        if !text.is_empty() && text.lines().all(|l| l.len() < MANIFEST_MAX_LINE) {
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
