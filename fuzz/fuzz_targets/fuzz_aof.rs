#![no_main]
//! The AOF loader's parts over arbitrary bytes: the manifest parser and formatter, and the
//! command reader.
//!
//! Manifest properties checked:
//! 1. Whatever manifest we parse formats to a text that parses back to the same manifest, when
//!    every formatted line fits MANIFEST_MAX_LINE (Redis's fgets buffer; Redis cannot read a
//!    longer line back either).
//! 2. A manifest built from arbitrary file-name bytes (control characters, quotes, backslashes,
//!    NUL, non-UTF-8) formats with Redis's sdscatrepr quoting, and parsing it back gives what
//!    Redis's aofLoadManifestFromFile gives: the name up to its first NUL byte (Redis reads it as
//!    a C string), "File can't be a path" for a '/' or '\' in that part, "Invalid AOF manifest
//!    file format" for an empty unquoted name, "too long line" past MANIFEST_MAX_LINE.
use ferrocache_persistence::aof::{AofCommandReader, AofInfo, FileType, Manifest, MANIFEST_MAX_LINE};
use libfuzzer_sys::fuzz_target;

fn roundtrip_parsed(m: &Manifest) {
    let text = m.format();
    if text.is_empty() || !text.lines().all(|l| l.len() < MANIFEST_MAX_LINE) {
        return;
    }
    assert!(text.is_ascii(), "formatted manifest is not ASCII: {text:?}");
    let back = Manifest::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    assert_eq!(&back, m, "{text:?}");
}

/// Entries with names taken from `data` (length-prefixed, any bytes).
fn built(data: &[u8]) -> Option<Manifest> {
    let mut m = Manifest::default();
    let mut i = 0;
    let mut seq = 0;
    while i < data.len() && seq < 4 {
        let len = data[i] as usize;
        let name = data.get(i + 1..i + 1 + len)?.to_vec();
        i += 1 + len;
        seq += 1;
        let ty = match seq {
            1 => FileType::Base,
            2 => FileType::History,
            _ => FileType::Incr,
        };
        let ai = AofInfo { file_name: name, file_seq: seq, file_type: ty };
        match ty {
            FileType::Base => m.base = Some(ai),
            FileType::History => m.history.push(ai),
            FileType::Incr => {
                m.curr_incr_file_seq = seq;
                m.incr.push(ai)
            }
        }
    }
    m.curr_base_file_seq = m.base.as_ref().map_or(0, |b| b.file_seq);
    m.base.as_ref()?;
    Some(m)
}

fn check_built(m: &Manifest) {
    let text = m.format();
    assert!(text.is_ascii(), "formatted manifest is not ASCII: {text:?}");
    // What Redis would do with each line, in file order (base, history, incr).
    let entries: Vec<&AofInfo> = m.base.iter().chain(m.history.iter()).chain(m.incr.iter()).collect();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), entries.len(), "{text:?}");
    let mut expect = m.clone();
    let mut expected_err = None;
    for (line, ai) in lines.iter().zip(&entries) {
        let cut = &ai.file_name[..ai.file_name.iter().position(|&c| c == 0).unwrap_or(ai.file_name.len())];
        expected_err = if line.len() >= MANIFEST_MAX_LINE {
            Some("The AOF manifest file contains too long line")
        } else if ai.file_name.is_empty() {
            // Not quoted: `file  seq 1 type b` has five arguments.
            Some("Invalid AOF manifest file format")
        } else if cut.contains(&b'/') || cut.contains(&b'\\') {
            Some("File can't be a path, just a filename")
        } else {
            None
        };
        if expected_err.is_some() {
            break;
        }
    }
    for ai in expect.base.iter_mut().chain(expect.history.iter_mut()).chain(expect.incr.iter_mut()) {
        ai.file_name.truncate(ai.file_name.iter().position(|&c| c == 0).unwrap_or(ai.file_name.len()));
    }
    match (Manifest::parse(text.as_bytes()), expected_err) {
        (Ok(back), None) => assert_eq!(back, expect, "{text:?}"),
        (Err(e), Some(msg)) => assert_eq!(e.msg, msg, "{text:?}"),
        (got, want) => panic!("{text:?}: got {got:?}, expected error {want:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::parse(data) {
        roundtrip_parsed(&m);
    }
    if let Some(m) = built(data) {
        check_built(&m);
    }
    let mut r = AofCommandReader::new(std::io::BufReader::new(data), 0);
    for _ in 0..100_000 {
        match r.next_command() {
            Ok(Some(_)) => {}
            _ => break,
        }
    }
});
