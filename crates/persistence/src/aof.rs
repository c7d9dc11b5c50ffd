//! The IO-free parts of Redis 7's multi-part AOF: the manifest (`<name>.manifest`, in Redis 7.0's
//! exact line format) and the command stream reader used to replay `.aof` files.

use std::io::BufRead;

pub const BASE_FILE_SUFFIX: &str = ".base";
pub const INCR_FILE_SUFFIX: &str = ".incr";
pub const RDB_FORMAT_SUFFIX: &str = ".rdb";
pub const AOF_FORMAT_SUFFIX: &str = ".aof";
pub const MANIFEST_NAME_SUFFIX: &str = ".manifest";
pub const TEMP_FILE_NAME_PREFIX: &str = "temp-";
/// Longest manifest line Redis accepts (MANIFEST_MAX_LINE).
pub const MANIFEST_MAX_LINE: usize = 1024;
/// fgets buffer of the AOF loader (AOF_ANNOTATION_LINE_MAX_LEN).
pub const ANNOTATION_LINE_MAX_LEN: usize = 1024;

/// The kind of one manifest entry: `b` base, `h` history, `i` incr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    Base,
    History,
    Incr,
}

impl FileType {
    pub fn as_char(self) -> char {
        match self {
            FileType::Base => 'b',
            FileType::History => 'h',
            FileType::Incr => 'i',
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AofInfo {
    /// The file name's bytes (a Unix file name need not be UTF-8). Never holds a NUL byte, a
    /// '/' or a '\\' once parsed (Redis reads names as C strings and refuses paths).
    pub file_name: Vec<u8>,
    pub file_seq: i64,
    pub file_type: FileType,
}

/// The AOF manifest (aofManifest).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<AofInfo>,
    pub incr: Vec<AofInfo>,
    pub history: Vec<AofInfo>,
    pub curr_base_file_seq: i64,
    pub curr_incr_file_seq: i64,
    /// Changed since last persisted.
    pub dirty: bool,
}

/// A fatal manifest error: (line number, line text, message) as Redis logs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    pub line: usize,
    pub text: Option<String>,
    pub msg: &'static str,
}

impl std::fmt::Display for ManifestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.text {
            Some(t) => write!(f, "line {}: '{}': {}", self.line, t, self.msg),
            None => write!(f, "{}", self.msg),
        }
    }
}

/// C's isprint in the C locale (bytes >= 0x80 are not printable).
fn c_isprint(c: u8) -> bool {
    (0x20..0x7f).contains(&c)
}

/// C's isspace in the C locale: space, \t, \n, \v, \f, \r.
fn c_isspace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// sdsneedsrepr, plus the single quote: does a file name need quoting in the manifest?
///
/// Redis 7.0 writes a name holding a `'` (and nothing else needing quotes) unquoted, and its own
/// sdssplitargs then reads that `'` as the start of a single-quoted string: such a manifest
/// does not load. We quote it instead (`"it's.aof"`), which redis-server reads back correctly.
pub fn needs_repr(s: &[u8]) -> bool {
    s.iter().any(|&c| {
        c == b'\\'
            || c == b'"'
            || c == b'\''
            || c == b'\n'
            || c == b'\r'
            || c == b'\t'
            || c == 7
            || c == 8
            || !c_isprint(c)
            || c_isspace(c)
    })
}

/// sdscatrepr: a quoted string of printable ASCII only, whatever bytes `s` holds.
pub fn repr(s: &[u8]) -> String {
    let mut o = String::from("\"");
    for &c in s {
        match c {
            b'\\' => o.push_str("\\\\"),
            b'"' => o.push_str("\\\""),
            b'\n' => o.push_str("\\n"),
            b'\r' => o.push_str("\\r"),
            b'\t' => o.push_str("\\t"),
            7 => o.push_str("\\a"),
            8 => o.push_str("\\b"),
            c if c_isprint(c) => o.push(c as char),
            c => o.push_str(&format!("\\x{:02x}", c)),
        }
    }
    o.push('"');
    o
}

/// A file name for log lines (non-UTF-8 bytes replaced).
pub fn display_name(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

fn format_info(buf: &mut String, ai: &AofInfo) {
    let name = if needs_repr(&ai.file_name) {
        repr(&ai.file_name)
    } else {
        // Printable ASCII only: no quoting needed, and valid UTF-8.
        String::from_utf8_lossy(&ai.file_name).into_owned()
    };
    buf.push_str(&format!("file {} seq {} type {}\n", name, ai.file_seq, ai.file_type.as_char()));
}

/// C-string view of a byte string: up to its first NUL (what sdsnew/strcmp see).
fn cstr(b: &[u8]) -> &[u8] {
    &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]
}

/// sdstrim(s, " \t\r\n").
fn trim(mut b: &[u8]) -> &[u8] {
    let set = |c: &u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    while b.first().is_some_and(set) {
        b = &b[1..];
    }
    while b.last().is_some_and(set) {
        b = &b[..b.len() - 1];
    }
    b
}

/// sdssplitargs: Redis's argument splitter (quotes, escapes). None on unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && c_isspace(line[i]) {
            i += 1;
        }
        if i >= n {
            return Some(out);
        }
        let mut cur = Vec::new();
        let (mut inq, mut insq) = (false, false);
        loop {
            if inq {
                if i >= n {
                    return None;
                }
                if line[i] == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && line[i + 2].is_ascii_hexdigit()
                    && line[i + 3].is_ascii_hexdigit()
                {
                    let h = std::str::from_utf8(&line[i + 2..i + 4])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                        .unwrap_or(0);
                    cur.push(h);
                    i += 3;
                } else if line[i] == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        c => c,
                    });
                } else if line[i] == b'"' {
                    if i + 1 < n && !c_isspace(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(line[i]);
                }
            } else if insq {
                if i >= n {
                    return None;
                }
                if line[i] == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if line[i] == b'\'' {
                    if i + 1 < n && !c_isspace(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(line[i]);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        i += 1;
                        break;
                    }
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        out.push(cur);
    }
}

impl Manifest {
    /// getAofManifestAsString: base first, then history, then incr files.
    pub fn format(&self) -> String {
        let mut buf = String::new();
        if let Some(b) = &self.base {
            format_info(&mut buf, b);
        }
        for h in &self.history {
            format_info(&mut buf, h);
        }
        for i in &self.incr {
            format_info(&mut buf, i);
        }
        buf
    }

    /// aofLoadManifestFromFile's parsing, with its error texts.
    pub fn parse(text: &[u8]) -> Result<Manifest, ManifestError> {
        let mut am = Manifest::default();
        let mut maxseq = 0i64;
        let mut linenum = 0usize;
        let mut rest = text;
        if text.is_empty() {
            return Err(ManifestError { line: 0, text: None, msg: "Found an empty AOF manifest" });
        }
        while !rest.is_empty() {
            // fgets with a MANIFEST_MAX_LINE+1 buffer
            let (chunk, has_nl) = match rest.iter().position(|&c| c == b'\n') {
                Some(p) if p < MANIFEST_MAX_LINE => (&rest[..=p], true),
                _ => (&rest[..rest.len().min(MANIFEST_MAX_LINE)], false),
            };
            rest = &rest[chunk.len()..];
            linenum += 1;
            if chunk.first() == Some(&b'#') {
                // (the rest of a comment line longer than the buffer is read as further lines)
                continue;
            }
            // fgets keeps NUL bytes but strchr(buf, '\n') and sdsnew(buf) stop at the first one.
            let has_nl = has_nl && !chunk.contains(&0);
            let line = trim(cstr(chunk));
            let line_text = String::from_utf8_lossy(line).into_owned();
            let err = |msg| Err(ManifestError { line: linenum, text: Some(line_text.clone()), msg });
            if !has_nl {
                return Err(ManifestError {
                    line: linenum,
                    text: None,
                    msg: "The AOF manifest file contains too long line",
                });
            }
            if line.is_empty() {
                return err("Invalid AOF manifest file format");
            }
            let argv = match split_args(line) {
                Some(a) if a.len() >= 6 && a.len() % 2 == 0 => a,
                _ => return err("Invalid AOF manifest file format"),
            };
            let (mut name, mut seq, mut ty) = (None::<Vec<u8>>, 0i64, 0u8);
            for p in argv.chunks(2) {
                // strcasecmp and sdsnew see C strings: everything after a NUL is ignored.
                let k = cstr(&p[0]);
                if k.eq_ignore_ascii_case(b"file") {
                    let n = cstr(&p[1]).to_vec();
                    // pathIsBaseName
                    if n.contains(&b'/') || n.contains(&b'\\') {
                        return err("File can't be a path, just a filename");
                    }
                    name = Some(n);
                } else if k.eq_ignore_ascii_case(b"seq") {
                    seq = atoll(cstr(&p[1]));
                } else if k.eq_ignore_ascii_case(b"type") {
                    ty = p[1].first().copied().unwrap_or(0);
                }
            }
            let Some(name) = name else { return err("Invalid AOF manifest file format") };
            if seq == 0 || ty == 0 {
                return err("Invalid AOF manifest file format");
            }
            match ty {
                b'b' => {
                    if am.base.is_some() {
                        return err("Found duplicate base file information");
                    }
                    am.curr_base_file_seq = seq;
                    am.base = Some(AofInfo { file_name: name, file_seq: seq, file_type: FileType::Base });
                }
                b'h' => am.history.push(AofInfo { file_name: name, file_seq: seq, file_type: FileType::History }),
                b'i' => {
                    if seq <= maxseq {
                        return err("Found a non-monotonic sequence number");
                    }
                    am.incr.push(AofInfo { file_name: name, file_seq: seq, file_type: FileType::Incr });
                    am.curr_incr_file_seq = seq;
                    maxseq = seq;
                }
                _ => return err("Unknown AOF file type"),
            }
        }
        if linenum == 0 {
            return Err(ManifestError { line: 0, text: None, msg: "Found an empty AOF manifest" });
        }
        Ok(am)
    }

    /// getNewBaseFileNameAndMarkPreAsHistory.
    pub fn new_base_name(&mut self, aof_filename: &str, rdb_preamble: bool) -> String {
        if let Some(mut b) = self.base.take() {
            b.file_type = FileType::History;
            self.history.insert(0, b);
        }
        self.curr_base_file_seq += 1;
        let name = format!(
            "{}.{}{}{}",
            aof_filename,
            self.curr_base_file_seq,
            BASE_FILE_SUFFIX,
            if rdb_preamble { RDB_FORMAT_SUFFIX } else { AOF_FORMAT_SUFFIX }
        );
        self.base = Some(AofInfo {
            file_name: name.clone().into_bytes(),
            file_seq: self.curr_base_file_seq,
            file_type: FileType::Base,
        });
        self.dirty = true;
        name
    }

    /// getNewIncrAofName.
    pub fn new_incr_name(&mut self, aof_filename: &str) -> String {
        self.curr_incr_file_seq += 1;
        let name = format!("{}.{}{}{}", aof_filename, self.curr_incr_file_seq, INCR_FILE_SUFFIX, AOF_FORMAT_SUFFIX);
        self.incr.push(AofInfo {
            file_name: name.clone().into_bytes(),
            file_seq: self.curr_incr_file_seq,
            file_type: FileType::Incr,
        });
        self.dirty = true;
        name
    }

    /// getLastIncrAofName.
    pub fn last_incr_name(&mut self, aof_filename: &str) -> Vec<u8> {
        match self.incr.last() {
            Some(i) => i.file_name.clone(),
            None => self.new_incr_name(aof_filename).into_bytes(),
        }
    }

    /// markRewrittenIncrAofAsHistory: every incr file but the one being written (when
    /// `keep_last`) becomes history.
    pub fn mark_rewritten_incr_as_history(&mut self, keep_last: bool) {
        if self.incr.is_empty() {
            return;
        }
        let keep = if keep_last { self.incr.pop() } else { None };
        for mut i in std::mem::take(&mut self.incr).into_iter().rev() {
            i.file_type = FileType::History;
            self.history.insert(0, i);
        }
        if let Some(k) = keep {
            self.incr.push(k);
        }
        self.dirty = true;
    }
}

/// atoll (glibc's strtoll: leading isspace, optional sign, digits; saturating).
fn atoll(b: &[u8]) -> i64 {
    let mut i = 0;
    while i < b.len() && c_isspace(b[i]) {
        i += 1;
    }
    let neg = b.get(i) == Some(&b'-');
    if matches!(b.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    let mut v: i64 = 0;
    while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit()) {
        let d = (d - b'0') as i64;
        v = if neg { v.saturating_mul(10).saturating_sub(d) } else { v.saturating_mul(10).saturating_add(d) };
        i += 1;
    }
    v
}

/// Why reading an AOF command stream stopped early.
#[derive(Debug)]
pub enum AofReadError {
    /// The file ends in the middle of a command (a short read).
    Truncated,
    /// Not the RESP multibulk format (a format error).
    Format,
    Io(std::io::Error),
}

/// Reads RESP multibulk commands from an AOF, skipping `#` annotations, as
/// loadSingleAppendOnlyFile does. `offset` is the position after the last complete command.
pub struct AofCommandReader<R: BufRead> {
    r: R,
    pos: u64,
    pub offset: u64,
    /// The last `#TS:` annotation seen, if any.
    pub last_timestamp: Option<i64>,
}

impl<R: BufRead> AofCommandReader<R> {
    pub fn new(r: R, start: u64) -> Self {
        AofCommandReader { r, pos: start, offset: start, last_timestamp: None }
    }

    /// fgets with a buffer of ANNOTATION_LINE_MAX_LEN: up to and including '\n', at most
    /// LEN-1 bytes. Empty at EOF.
    fn fgets(&mut self) -> Result<Vec<u8>, AofReadError> {
        let mut line = Vec::new();
        let max = ANNOTATION_LINE_MAX_LEN - 1;
        while line.len() < max {
            let buf = self.r.fill_buf().map_err(AofReadError::Io)?;
            if buf.is_empty() {
                break;
            }
            let want = max - line.len();
            let take = match buf.iter().take(want).position(|&c| c == b'\n') {
                Some(p) => p + 1,
                None => buf.len().min(want),
            };
            line.extend_from_slice(&buf[..take]);
            self.r.consume(take);
            self.pos += take as u64;
            if line.last() == Some(&b'\n') {
                break;
            }
        }
        Ok(line)
    }

    fn read_exact(&mut self, n: usize) -> Result<Vec<u8>, AofReadError> {
        // Grow with the data actually read: a corrupt length must end in Truncated, not in an
        // allocation of that size.
        let mut v = Vec::with_capacity(n.min(1 << 20));
        while v.len() < n {
            let buf = match self.r.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(AofReadError::Io(e)),
            };
            if buf.is_empty() {
                return Err(AofReadError::Truncated);
            }
            let take = buf.len().min(n - v.len());
            v.extend_from_slice(&buf[..take]);
            self.r.consume(take);
        }
        self.pos += n as u64;
        Ok(v)
    }

    /// The next command, Ok(None) at a clean end of file.
    pub fn next_command(&mut self) -> Result<Option<Vec<Vec<u8>>>, AofReadError> {
        loop {
            let line = self.fgets()?;
            if line.is_empty() {
                return Ok(None);
            }
            if line[0] == b'#' {
                if let Some(ts) = line.strip_prefix(b"#TS:") {
                    self.last_timestamp = Some(atoll(ts));
                }
                // An annotation longer than the buffer continues as further "lines".
                continue;
            }
            if line[0] != b'*' {
                return Err(AofReadError::Format);
            }
            if line.len() == 1 {
                return Err(AofReadError::Truncated);
            }
            let argc = atoll(&line[1..]);
            if argc < 1 {
                return Err(AofReadError::Format);
            }
            let mut argv = Vec::with_capacity(argc.min(1024) as usize);
            for _ in 0..argc {
                let l = self.fgets()?;
                if l.is_empty() {
                    return Err(AofReadError::Truncated);
                }
                if l[0] != b'$' {
                    return Err(AofReadError::Format);
                }
                let len = atoll(&l[1..]).max(0) as usize;
                let data = self.read_exact(len)?;
                self.read_exact(2)?;
                argv.push(data);
            }
            self.offset = self.pos;
            return Ok(Some(argv));
        }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }
}

/// Encode one command as RESP multibulk (catAppendOnlyGenericCommand).
pub fn encode_command<T: AsRef<[u8]>>(out: &mut Vec<u8>, argv: &[T]) {
    out.push(b'*');
    out.extend_from_slice(argv.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in argv {
        let a = a.as_ref();
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_roundtrip_and_format() {
        let mut m = Manifest::default();
        let b = m.new_base_name("appendonly.aof", true);
        let i = m.new_incr_name("appendonly.aof");
        assert_eq!(b, "appendonly.aof.1.base.rdb");
        assert_eq!(i, "appendonly.aof.1.incr.aof");
        assert_eq!(
            m.format(),
            "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
        );
        let p = Manifest::parse(m.format().as_bytes()).unwrap();
        assert_eq!(p.base, m.base);
        assert_eq!(p.incr, m.incr);
        // a rewrite: new incr, new base, old ones become history (in Redis's list order)
        let mut m2 = p.clone();
        m2.new_incr_name("appendonly.aof");
        m2.new_base_name("appendonly.aof", false);
        m2.mark_rewritten_incr_as_history(true);
        assert_eq!(
            m2.format(),
            "file appendonly.aof.2.base.aof seq 2 type b\nfile appendonly.aof.1.incr.aof seq 1 type h\nfile appendonly.aof.1.base.rdb seq 1 type h\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
        );
        let q = Manifest::parse(m2.format().as_bytes()).unwrap();
        assert_eq!(q.history.len(), 2);
        assert_eq!(q.curr_incr_file_seq, 2);
    }

    #[test]
    fn manifest_quoted_names_and_errors() {
        let m = Manifest {
            base: Some(AofInfo { file_name: "my file.aof".into(), file_seq: 1, file_type: FileType::Base }),
            ..Default::default()
        };
        let s = m.format();
        assert_eq!(s, "file \"my file.aof\" seq 1 type b\n");
        assert_eq!(Manifest::parse(s.as_bytes()).unwrap().base.unwrap().file_name, b"my file.aof");
        assert_eq!(Manifest::parse(b"").unwrap_err().msg, "Found an empty AOF manifest");
        assert_eq!(Manifest::parse(b"file a seq 1\n").unwrap_err().msg, "Invalid AOF manifest file format");
        assert_eq!(Manifest::parse(b"file a seq 1 type x\n").unwrap_err().msg, "Unknown AOF file type");
        assert_eq!(
            Manifest::parse(b"file a/b seq 1 type b\n").unwrap_err().msg,
            "File can't be a path, just a filename"
        );
        assert_eq!(
            Manifest::parse(b"file a seq 2 type i\nfile b seq 1 type i\n").unwrap_err().msg,
            "Found a non-monotonic sequence number"
        );
        assert_eq!(Manifest::parse(b"# c\nfile a seq 1 type b\n").unwrap().base.unwrap().file_name, b"a");
        assert_eq!(
            Manifest::parse(b"file a seq 1 type b").unwrap_err().msg,
            "The AOF manifest file contains too long line"
        );
    }

    #[test]
    fn manifest_names_with_any_bytes() {
        let name = b"a\x01b\tc\nd\re\"fg h\x07\x08\x0b\x0c\x7f\xff\xc3\xa9'i.aof".to_vec();
        let m = Manifest {
            base: Some(AofInfo { file_name: name.clone(), file_seq: 1, file_type: FileType::Base }),
            curr_base_file_seq: 1,
            ..Default::default()
        };
        let s = m.format();
        assert_eq!(s, "file \"a\\x01b\\tc\\nd\\re\\\"fg h\\a\\b\\x0b\\x0c\\x7f\\xff\\xc3\\xa9'i.aof\" seq 1 type b\n");
        assert_eq!(Manifest::parse(s.as_bytes()).unwrap(), Manifest { dirty: false, ..m });
        // A name with only a single quote to escape is quoted too (Redis 7.0 leaves it bare and
        // cannot read it back).
        let q = Manifest {
            base: Some(AofInfo { file_name: b"it's.aof".to_vec(), file_seq: 1, file_type: FileType::Base }),
            curr_base_file_seq: 1,
            ..Default::default()
        };
        assert_eq!(q.format(), "file \"it's.aof\" seq 1 type b\n");
        assert_eq!(Manifest::parse(q.format().as_bytes()).unwrap(), q);
        // Raw (unquoted) non-UTF-8 bytes are kept as they are.
        let raw = Manifest::parse(b"file \xff\xfe.aof seq 1 type b\n").unwrap();
        assert_eq!(raw.base.unwrap().file_name, b"\xff\xfe.aof");
        // Redis reads names as C strings: a NUL ends the name; a backslash is a path.
        let nul = Manifest::parse(b"file \"ab\\x00/cd\" seq 1 type b\n").unwrap();
        assert_eq!(nul.base.unwrap().file_name, b"ab");
        assert_eq!(
            Manifest::parse(b"file \"a\\\\b\" seq 1 type b\n").unwrap_err().msg,
            "File can't be a path, just a filename"
        );
        // A raw NUL byte hides the line's newline from strchr: "too long line".
        assert_eq!(
            Manifest::parse(b"file a\0 seq 1 type b\n").unwrap_err().msg,
            "The AOF manifest file contains too long line"
        );
        // sdssplitargs skips C isspace (\v too) between arguments, but only ' ', \t, \r, \n
        // and NUL end an unquoted one.
        assert_eq!(Manifest::parse(b"\x0bfile \x0b a seq 1 type b\n").unwrap().base.unwrap().file_name, b"a");
        assert_eq!(Manifest::parse(b"file\x0ba seq 1 type b\n").unwrap_err().msg, "Invalid AOF manifest file format");
        // seq is read with atoll (saturating).
        assert_eq!(Manifest::parse(b"file a seq 99999999999999999999 type b\n").unwrap().curr_base_file_seq, i64::MAX);
    }

    #[test]
    fn reader_commands_annotations_truncation() {
        let mut v = Vec::new();
        v.extend_from_slice(b"#TS:1700000000\r\n");
        encode_command(&mut v, &[b"SET".as_slice(), b"k", b"v\r\nx"]);
        encode_command(&mut v, &[b"INCR".as_slice(), b"n"]);
        let full = v.len() as u64;
        let mut r = AofCommandReader::new(std::io::Cursor::new(v.clone()), 0);
        assert_eq!(r.next_command().unwrap().unwrap(), vec![b"SET".to_vec(), b"k".to_vec(), b"v\r\nx".to_vec()]);
        assert_eq!(r.last_timestamp, Some(1700000000));
        assert_eq!(r.next_command().unwrap().unwrap().len(), 2);
        assert!(r.next_command().unwrap().is_none());
        assert_eq!(r.offset, full);
        for cut in 1..(v.len() - 1) {
            let mut r = AofCommandReader::new(std::io::Cursor::new(v[..cut].to_vec()), 0);
            let mut n = 0;
            let e = loop {
                match r.next_command() {
                    Ok(Some(_)) => n += 1,
                    Ok(None) => break None,
                    Err(e) => break Some(e),
                }
            };
            // every cut is either a clean stop after a command or a truncation
            match e {
                None => assert!(cut as u64 == r.offset || cut <= 16, "cut {cut}"),
                Some(AofReadError::Truncated) => {}
                Some(other) => panic!("cut {cut}: {other:?} after {n}"),
            }
        }
        let mut r = AofCommandReader::new(std::io::Cursor::new(b"+OK\r\n".to_vec()), 0);
        assert!(matches!(r.next_command(), Err(AofReadError::Format)));
    }
}
