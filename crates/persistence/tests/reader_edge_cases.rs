//! Reader edge cases: old RDB versions, modules, opcodes, headers.

use ferrocache_persistence::rdb::crc64::crc64;
use ferrocache_persistence::rdb::encode::{write_len, write_string};
use ferrocache_persistence::rdb::{
    module_type_name, opcode, rdb_type, restore_payload, RdbError, RdbEvent, RdbReader, RdbValue,
};

fn file(version: u32, body: &[u8], checksum: bool) -> Vec<u8> {
    let mut f = format!("REDIS{version:04}").into_bytes();
    f.extend_from_slice(body);
    f.push(opcode::EOF);
    if version >= 5 {
        let crc = if checksum { crc64(0, &f) } else { 0 };
        f.extend_from_slice(&crc.to_le_bytes());
    }
    f
}

fn events(f: &[u8]) -> Result<Vec<RdbEvent>, RdbError> {
    RdbReader::new(f)?.collect()
}

#[test]
fn old_versions_and_second_expires() {
    for version in 1..=10u32 {
        let mut body = vec![opcode::SELECTDB, 2];
        body.push(opcode::EXPIRETIME);
        body.extend_from_slice(&1_000_000i32.to_le_bytes());
        body.push(rdb_type::STRING);
        write_string(&mut body, b"k", false);
        write_string(&mut body, b"v", false);
        body.push(rdb_type::ZSET);
        write_string(&mut body, b"z", false);
        write_len(&mut body, 3);
        for (m, s) in [(&b"a"[..], &b"1.5"[..]), (b"b", b"\xfe"), (b"c", b"\xff")] {
            write_string(&mut body, m, false);
            if s.len() == 1 && s[0] >= 253 {
                body.push(s[0]);
            } else {
                body.push(s.len() as u8);
                body.extend_from_slice(s);
            }
        }
        let ev = events(&file(version, &body, true)).unwrap();
        assert_eq!(ev[0], RdbEvent::SelectDb(2));
        let RdbEvent::Entry(e) = &ev[1] else { panic!() };
        assert_eq!(e.expire_ms, Some(1_000_000_000));
        assert_eq!(e.db, 2);
        let RdbEvent::Entry(z) = &ev[2] else { panic!() };
        assert_eq!(
            z.value,
            RdbValue::ZSet(vec![
                (b"c".to_vec(), f64::NEG_INFINITY),
                (b"a".to_vec(), 1.5),
                (b"b".to_vec(), f64::INFINITY)
            ])
        );
        assert_eq!(ev.last(), Some(&RdbEvent::Eof));
    }
}

#[test]
fn headers_and_checksums() {
    assert!(matches!(events(b"REDIS0011\xff\0\0\0\0\0\0\0\0"), Err(RdbError::UnsupportedVersion(11))));
    assert!(matches!(events(b"REDIT0010\xff"), Err(RdbError::BadSignature)));
    assert!(matches!(events(b"REDIS0000\xff"), Err(RdbError::UnsupportedVersion(0))));
    // Zero checksum means "not computed".
    assert!(events(&file(10, &[], false)).is_ok());
    let mut bad = file(10, &[opcode::SELECTDB, 0], true);
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert!(matches!(events(&bad), Err(RdbError::ChecksumMismatch { .. })));
    assert!(RdbReader::new(bad.as_slice()).unwrap().verify_checksum(false).all(|e| e.is_ok()));
    // Truncated file.
    let f = file(10, &[opcode::SELECTDB, 0], true);
    assert!(matches!(events(&f[..f.len() - 3]), Err(RdbError::UnexpectedEof)));
}

#[test]
fn module_values_are_refused_and_module_aux_skipped() {
    // Module type id for "mymodule1" encver 3.
    let cset = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id = 0u64;
    for c in b"mymodule1" {
        id = (id << 6) | cset.iter().position(|x| x == c).unwrap() as u64;
    }
    id = (id << 10) | 3;
    assert_eq!(module_type_name(id), "mymodule1");

    for ty in [rdb_type::MODULE, rdb_type::MODULE_2] {
        let mut body = vec![ty];
        write_string(&mut body, b"key", false);
        write_len(&mut body, id);
        body.extend_from_slice(&[2, 5, 0]); // UINT 5, EOF
        let err = events(&file(10, &body, true)).unwrap_err();
        match &err {
            RdbError::ModuleValue { module_name, module_id } => {
                assert_eq!(module_name, "mymodule1");
                assert_eq!(*module_id, id);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("mymodule1"));
    }

    let mut body = vec![opcode::MODULE_AUX];
    write_len(&mut body, id);
    write_len(&mut body, 2); // when_opcode = UINT
    write_len(&mut body, 2); // when = after keyspace
    body.extend_from_slice(&[1, 7, 5]); // SINT 7, STRING ...
    write_string(&mut body, b"blob", false);
    body.push(4); // DOUBLE
    body.extend_from_slice(&1.5f64.to_le_bytes());
    body.push(3); // FLOAT
    body.extend_from_slice(&1.5f32.to_le_bytes());
    body.push(0); // EOF
    body.push(rdb_type::STRING);
    write_string(&mut body, b"k", false);
    write_string(&mut body, b"v", false);
    let ev = events(&file(10, &body, true)).unwrap();
    assert_eq!(ev[0], RdbEvent::ModuleAux { module_id: id, module_name: "mymodule1".into(), when: 2 });
    assert!(matches!(ev[1], RdbEvent::Entry(_)));
}

#[test]
fn prerelease_function_opcode_refused() {
    let mut body = vec![opcode::FUNCTION];
    write_string(&mut body, b"x", false);
    assert!(matches!(events(&file(10, &body, true)), Err(RdbError::PreReleaseFunctionFormat)));
}

#[test]
fn unknown_type_and_restore_errors() {
    let mut body = vec![20u8];
    write_string(&mut body, b"k", false);
    assert!(matches!(events(&file(10, &body, true)), Err(RdbError::UnknownType(20))));

    // RESTORE of a module payload: CRC/version ok, but the value is refused.
    let mut p = vec![rdb_type::MODULE_2];
    write_len(&mut p, 12345 << 10);
    p.push(0);
    p.extend_from_slice(&10u16.to_le_bytes());
    let crc = crc64(0, &p);
    p.extend_from_slice(&crc.to_le_bytes());
    let e = restore_payload(&p).unwrap_err();
    assert!(matches!(e, RdbError::ModuleValue { .. }));
    assert_eq!(e.redis_reply(), "ERR Bad data format");
    // Older payload versions are accepted.
    let mut p = vec![rdb_type::STRING];
    write_string(&mut p, b"abc", false);
    p.extend_from_slice(&6u16.to_le_bytes());
    let crc = crc64(0, &p);
    p.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(restore_payload(&p).unwrap(), RdbValue::String(b"abc".to_vec()));
}
