//! Streaming RDB file writer and reader (`rdbSaveRio` / `rdbLoadRio`).

use std::io::{self, Read, Write};

use super::crc64::crc64;
use super::decode::{read_array, read_len, read_millis, read_string, read_u8, read_value};
use super::encode::{choose_type, write_len, write_string, write_value};
use super::{module_type_name, opcode, EncodeOptions, EncodingHint, RdbError, RdbValue, RDB_VERSION};

/// Per-key metadata written before a key/value pair.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryMeta {
    /// Absolute expire time, unix milliseconds (RDB_OPCODE_EXPIRETIME_MS).
    pub expire_ms: Option<i64>,
    /// LRU idle time in seconds (RDB_OPCODE_IDLE).
    pub lru_idle: Option<u64>,
    /// LFU counter (RDB_OPCODE_FREQ).
    pub lfu_freq: Option<u8>,
    /// Encoding choice for the value.
    pub hint: EncodingHint,
}

/// Options for [`RdbWriter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdbWriterOptions {
    pub encode: EncodeOptions,
    /// `rdbchecksum`: when false the trailer is 8 zero bytes.
    pub checksum: bool,
}

impl Default for RdbWriterOptions {
    fn default() -> Self {
        RdbWriterOptions { encode: EncodeOptions::default(), checksum: true }
    }
}

/// Streaming RDB writer. Call [`RdbWriter::finish`] to write the EOF opcode
/// and the CRC64 trailer.
pub struct RdbWriter<W: Write> {
    w: W,
    crc: u64,
    opts: RdbWriterOptions,
    buf: Vec<u8>,
}

impl<W: Write> RdbWriter<W> {
    /// Start an RDB file with default options, writing the `REDIS0010` header.
    pub fn new(w: W) -> io::Result<Self> {
        Self::with_options(w, RdbWriterOptions::default())
    }

    pub fn with_options(w: W, opts: RdbWriterOptions) -> io::Result<Self> {
        let mut me = RdbWriter { w, crc: 0, opts, buf: Vec::new() };
        let header = format!("REDIS{:04}", RDB_VERSION);
        me.emit_slice(header.as_bytes())?;
        Ok(me)
    }

    fn emit_slice(&mut self, b: &[u8]) -> io::Result<()> {
        self.crc = crc64(self.crc, b);
        self.w.write_all(b)
    }

    fn flush_buf(&mut self) -> io::Result<()> {
        let buf = std::mem::take(&mut self.buf);
        let r = self.emit_slice(&buf);
        self.buf = buf;
        self.buf.clear();
        r
    }

    /// An AUX field (`rdbSaveAuxField`).
    pub fn write_aux(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        let c = self.opts.encode.compression;
        self.buf.clear();
        self.buf.push(opcode::AUX);
        write_string(&mut self.buf, key, c);
        write_string(&mut self.buf, value, c);
        self.flush_buf()
    }

    /// An integer AUX field (`rdbSaveAuxFieldStrInt`).
    pub fn write_aux_int(&mut self, key: &[u8], value: i64) -> io::Result<()> {
        self.write_aux(key, value.to_string().as_bytes())
    }

    /// The AUX fields redis-server 7.0 writes at the start of a file
    /// (without replication info): redis-ver, redis-bits, ctime, used-mem,
    /// aof-base.
    pub fn write_default_aux(&mut self, ctime_secs: i64, used_mem: i64) -> io::Result<()> {
        self.write_aux(b"redis-ver", b"7.0.15")?;
        self.write_aux_int(b"redis-bits", 64)?;
        self.write_aux_int(b"ctime", ctime_secs)?;
        self.write_aux_int(b"used-mem", used_mem)?;
        self.write_aux_int(b"aof-base", 0)
    }

    /// A function library (RDB_OPCODE_FUNCTION2 + its source code).
    pub fn write_function(&mut self, code: &[u8]) -> io::Result<()> {
        let c = self.opts.encode.compression;
        self.buf.clear();
        self.buf.push(opcode::FUNCTION2);
        write_string(&mut self.buf, code, c);
        self.flush_buf()
    }

    /// RDB_OPCODE_SELECTDB.
    pub fn select_db(&mut self, db: u64) -> io::Result<()> {
        self.buf.clear();
        self.buf.push(opcode::SELECTDB);
        write_len(&mut self.buf, db);
        self.flush_buf()
    }

    /// RDB_OPCODE_RESIZEDB.
    pub fn resize_db(&mut self, db_size: u64, expires_size: u64) -> io::Result<()> {
        self.buf.clear();
        self.buf.push(opcode::RESIZEDB);
        write_len(&mut self.buf, db_size);
        write_len(&mut self.buf, expires_size);
        self.flush_buf()
    }

    /// A key/value pair, in the encoding chosen by `meta.hint`
    /// (`rdbSaveKeyValuePair`).
    pub fn write_entry(&mut self, key: &[u8], value: &RdbValue, meta: &EntryMeta) -> io::Result<()> {
        let ty = choose_type(value, meta.hint, &self.opts.encode);
        self.write_entry_as(key, value, ty, meta)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
    }

    /// A key/value pair written as the explicit RDB type `ty` (including
    /// legacy types; see [`write_value`]).
    pub fn write_entry_as(&mut self, key: &[u8], value: &RdbValue, ty: u8, meta: &EntryMeta) -> Result<(), RdbError> {
        let c = self.opts.encode.compression;
        self.buf.clear();
        if let Some(t) = meta.expire_ms {
            self.buf.push(opcode::EXPIRETIME_MS);
            self.buf.extend_from_slice(&t.to_le_bytes());
        }
        if let Some(idle) = meta.lru_idle {
            self.buf.push(opcode::IDLE);
            write_len(&mut self.buf, idle);
        }
        if let Some(f) = meta.lfu_freq {
            self.buf.push(opcode::FREQ);
            self.buf.push(f);
        }
        self.buf.push(ty);
        write_string(&mut self.buf, key, c);
        let mut buf = std::mem::take(&mut self.buf);
        let r = write_value(&mut buf, value, ty, &self.opts.encode);
        self.buf = buf;
        r?;
        self.flush_buf().map_err(RdbError::from)
    }

    /// Re-emit an event read by [`RdbReader`] (for copying/filtering files).
    /// Entries are written with [`EncodingHint::Auto`]; `ModuleAux` cannot be
    /// re-emitted (its payload is skipped by the reader) and `Eof` is a no-op
    /// (call [`RdbWriter::finish`]).
    pub fn write_event(&mut self, ev: &RdbEvent) -> Result<(), RdbError> {
        match ev {
            RdbEvent::Aux { key, value } => self.write_aux(key, value)?,
            RdbEvent::SelectDb(db) => self.select_db(*db)?,
            RdbEvent::ResizeDb { db_size, expires_size } => self.resize_db(*db_size, *expires_size)?,
            RdbEvent::Function(code) => self.write_function(code)?,
            RdbEvent::Entry(e) => {
                let meta = EntryMeta {
                    expire_ms: e.expire_ms,
                    lru_idle: e.lru_idle,
                    lfu_freq: e.lfu_freq,
                    hint: EncodingHint::Auto,
                };
                let ty = choose_type(&e.value, meta.hint, &self.opts.encode);
                self.write_entry_as(&e.key, &e.value, ty, &meta)?;
            }
            RdbEvent::ModuleAux { module_name, .. } => {
                return Err(RdbError::Corrupt(format!("cannot re-emit module aux data of '{module_name}'")))
            }
            RdbEvent::Eof => {}
        }
        Ok(())
    }

    /// Write EOF and the checksum; returns the inner writer (flushed).
    pub fn finish(mut self) -> io::Result<W> {
        self.emit_slice(&[opcode::EOF])?;
        let crc = if self.opts.checksum { self.crc } else { 0 };
        self.w.write_all(&crc.to_le_bytes())?;
        self.w.flush()?;
        Ok(self.w)
    }
}

/// A key/value pair read from an RDB file.
#[derive(Debug, Clone, PartialEq)]
pub struct RdbEntry {
    pub db: u64,
    pub key: Vec<u8>,
    pub value: RdbValue,
    /// Absolute expire time in unix milliseconds.
    pub expire_ms: Option<i64>,
    pub lru_idle: Option<u64>,
    pub lfu_freq: Option<u8>,
}

/// Events produced by [`RdbReader`].
#[derive(Debug, Clone, PartialEq)]
pub enum RdbEvent {
    Aux {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    SelectDb(u64),
    ResizeDb {
        db_size: u64,
        expires_size: u64,
    },
    /// Function library source code (RDB_OPCODE_FUNCTION2).
    Function(Vec<u8>),
    /// Module auxiliary data (skipped; only identified).
    ModuleAux {
        module_id: u64,
        module_name: String,
        when: u64,
    },
    Entry(RdbEntry),
    /// End of file; the checksum (if any) has been verified.
    Eof,
}

struct CrcReader<R> {
    inner: R,
    crc: u64,
}

impl<R: Read> Read for CrcReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc = crc64(self.crc, &buf[..n]);
        Ok(n)
    }
}

/// Streaming RDB reader; accepts RDB versions 1 to 10.
pub struct RdbReader<R: Read> {
    r: CrcReader<R>,
    version: u32,
    db: u64,
    done: bool,
    verify_checksum: bool,
}

impl<R: Read> RdbReader<R> {
    /// Read and validate the `REDISxxxx` header.
    pub fn new(r: R) -> Result<Self, RdbError> {
        let mut r = CrcReader { inner: r, crc: 0 };
        let header: [u8; 9] = read_array(&mut r)?;
        if &header[..5] != b"REDIS" {
            return Err(RdbError::BadSignature);
        }
        let ver = std::str::from_utf8(&header[5..])
            .ok()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u32>().ok())
            .ok_or(RdbError::BadSignature)?;
        if !(1..=RDB_VERSION as u32).contains(&ver) {
            return Err(RdbError::UnsupportedVersion(ver));
        }
        Ok(RdbReader { r, version: ver, db: 0, done: false, verify_checksum: true })
    }

    /// Disable checksum verification (like `rdbchecksum no` when loading).
    pub fn verify_checksum(mut self, yes: bool) -> Self {
        self.verify_checksum = yes;
        self
    }

    /// The file's RDB version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The next event, or `None` after [`RdbEvent::Eof`].
    pub fn next_event(&mut self) -> Result<Option<RdbEvent>, RdbError> {
        if self.done {
            return Ok(None);
        }
        let r = &mut self.r;
        let mut expire_ms = None;
        let mut lru_idle = None;
        let mut lfu_freq = None;
        loop {
            let ty = read_u8(r)?;
            match ty {
                opcode::EXPIRETIME => {
                    let secs = i32::from_le_bytes(read_array(r)?);
                    expire_ms = Some(secs as i64 * 1000);
                }
                opcode::EXPIRETIME_MS => expire_ms = Some(read_millis(r)?),
                opcode::FREQ => lfu_freq = Some(read_u8(r)?),
                opcode::IDLE => lru_idle = Some(read_len(r)?),
                opcode::EOF => {
                    self.done = true;
                    if self.version >= 5 {
                        let computed = r.crc;
                        let expected = u64::from_le_bytes(read_array(r)?);
                        if self.verify_checksum && expected != 0 && expected != computed {
                            return Err(RdbError::ChecksumMismatch { expected, computed });
                        }
                    }
                    return Ok(Some(RdbEvent::Eof));
                }
                opcode::SELECTDB => {
                    self.db = read_len(r)?;
                    return Ok(Some(RdbEvent::SelectDb(self.db)));
                }
                opcode::RESIZEDB => {
                    let db_size = read_len(r)?;
                    let expires_size = read_len(r)?;
                    return Ok(Some(RdbEvent::ResizeDb { db_size, expires_size }));
                }
                opcode::AUX => {
                    let key = read_string(r)?;
                    let value = read_string(r)?;
                    return Ok(Some(RdbEvent::Aux { key, value }));
                }
                opcode::MODULE_AUX => {
                    let module_id = read_len(r)?;
                    let when_opcode = read_len(r)?;
                    let when = read_len(r)?;
                    if when_opcode != MODULE_OPCODE_UINT {
                        return Err(RdbError::Corrupt("bad module aux when opcode".into()));
                    }
                    skip_module_value(r)?;
                    return Ok(Some(RdbEvent::ModuleAux { module_id, module_name: module_type_name(module_id), when }));
                }
                opcode::FUNCTION => return Err(RdbError::PreReleaseFunctionFormat),
                opcode::FUNCTION2 => return Ok(Some(RdbEvent::Function(read_string(r)?))),
                _ => {
                    let key = read_string(r)?;
                    let value = read_value(r, ty)?;
                    return Ok(Some(RdbEvent::Entry(RdbEntry {
                        db: self.db,
                        key,
                        value,
                        expire_ms,
                        lru_idle,
                        lfu_freq,
                    })));
                }
            }
        }
    }
}

impl<R: Read> Iterator for RdbReader<R> {
    type Item = Result<RdbEvent, RdbError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_event() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

const MODULE_OPCODE_EOF: u64 = 0;
const MODULE_OPCODE_SINT: u64 = 1;
const MODULE_OPCODE_UINT: u64 = 2;
const MODULE_OPCODE_FLOAT: u64 = 3;
const MODULE_OPCODE_DOUBLE: u64 = 4;
const MODULE_OPCODE_STRING: u64 = 5;

/// `rdbLoadCheckModuleValue`: skip self-describing module data.
fn skip_module_value<R: Read>(r: &mut R) -> Result<(), RdbError> {
    loop {
        match read_len(r)? {
            MODULE_OPCODE_EOF => return Ok(()),
            MODULE_OPCODE_SINT | MODULE_OPCODE_UINT => {
                read_len(r)?;
            }
            MODULE_OPCODE_FLOAT => {
                read_array::<_, 4>(r)?;
            }
            MODULE_OPCODE_DOUBLE => {
                read_array::<_, 8>(r)?;
            }
            MODULE_OPCODE_STRING => {
                read_string(r)?;
            }
            op => return Err(RdbError::Corrupt(format!("unknown module opcode {op}"))),
        }
    }
}
