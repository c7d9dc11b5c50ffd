//! The `cjson` library scripts see (Lua CJSON 2.1.0's API and output, as Redis loads it):
//! `encode`, `decode`, `null`, `new` and the configuration functions
//! (`encode_sparse_array`, `encode_max_depth`, `decode_max_depth`, `encode_number_precision`,
//! `encode_keep_buffer`, `encode_invalid_numbers`, `decode_invalid_numbers`).
//!
//! The configuration lives in a userdata shared by a module table's functions (an upvalue):
//! changes made by one script stay for the next ones, as in Redis.
//!
//! Encoding: a table whose keys are all positive integers is an array (holes become null)
//! unless it is "excessively sparse"; anything else an object (number keys are written as
//! strings); numbers use `%.14g`; strings escape `"`, `\`, `/`, control characters and DEL.
//! Decoding: JSON text into Lua values, `null` as `cjson.null` (a NULL light userdata); by
//! default numbers as `strtod` reads them (hexadecimal, `inf`, `nan` included).
//!
//! Both directions are iterative (no recursion on the thread's stack); the nesting limits are
//! the configured depths and the Lua stack, as in Lua CJSON.

use super::capi::{self, cfn, Raise, Ret};
use super::ffi::*;
use super::numfmt;
use std::os::raw::c_int;

#[derive(Clone, Copy)]
struct Config {
    sparse_convert: c_int,
    sparse_ratio: c_int,
    sparse_safe: c_int,
    encode_max_depth: c_int,
    /// 0: error, 1: allowed ("nan", "inf"), 2: null.
    encode_invalid_numbers: c_int,
    number_precision: c_int,
    keep_buffer: c_int,
    decode_invalid_numbers: c_int,
    decode_max_depth: c_int,
}

const DEFAULTS: Config = Config {
    sparse_convert: 0,
    sparse_ratio: 2,
    sparse_safe: 10,
    encode_max_depth: 1000,
    encode_invalid_numbers: 0,
    number_precision: 14,
    keep_buffer: 1,
    decode_invalid_numbers: 1,
    decode_max_depth: 1000,
};

unsafe fn config<'a>(l: *mut lua_State) -> Result<&'a mut Config, Raise> {
    let p = lua_touserdata(l, lua_upvalueindex(1)) as *mut Config;
    if p.is_null() {
        return Err(capi::error(l, b"BUG: Unable to fetch CJSON configuration"));
    }
    Ok(&mut *p)
}

// ---------------------------------------------------------------------------------------------
// Configuration functions
// ---------------------------------------------------------------------------------------------

/// `json_arg_init`: at most `args` arguments, padded with nils.
unsafe fn arg_init<'a>(l: *mut lua_State, args: c_int) -> Result<&'a mut Config, Raise> {
    if lua_gettop(l) > args {
        return Err(capi::arg_error(l, args + 1, b"found too many arguments"));
    }
    while lua_gettop(l) < args {
        lua_pushnil(l);
    }
    config(l)
}

unsafe fn integer_option(l: *mut lua_State, idx: c_int, setting: &mut c_int, min: c_int, max: c_int) -> Ret {
    if lua_type(l, idx) != LUA_TNIL {
        let value = capi::check_integer(l, idx)? as c_int;
        if !(min <= value && value <= max) {
            let m = format!("expected integer between {min} and {max}");
            return Err(capi::arg_error(l, 1, m.as_bytes()));
        }
        *setting = value;
    }
    lua_pushinteger(l, *setting as i64);
    Ok(1)
}

/// `json_enum_option`: a boolean or one of `options` (by index).
unsafe fn enum_option(l: *mut lua_State, idx: c_int, setting: &mut c_int, options: &[&str]) -> Ret {
    if lua_type(l, idx) != LUA_TNIL {
        if lua_type(l, idx) == LUA_TBOOLEAN {
            *setting = lua_toboolean(l, idx);
        } else {
            let name = capi::check_cstr(l, idx)?;
            match options.iter().position(|o| o.as_bytes() == name) {
                Some(i) => *setting = i as c_int,
                None => {
                    let mut m = b"invalid option '".to_vec();
                    m.extend_from_slice(name);
                    m.push(b'\'');
                    return Err(capi::arg_error(l, idx, &m));
                }
            }
        }
    }
    if *setting == 0 || *setting == 1 {
        lua_pushboolean(l, *setting);
    } else {
        capi::push_str(l, options[*setting as usize].as_bytes());
    }
    Ok(1)
}

const ON_OFF: &[&str] = &["off", "on"];

unsafe fn cfg_encode_sparse_array(l: *mut lua_State) -> Ret {
    let cfg = arg_init(l, 3)?;
    enum_option(l, 1, &mut cfg.sparse_convert, ON_OFF)?;
    integer_option(l, 2, &mut cfg.sparse_ratio, 0, c_int::MAX)?;
    integer_option(l, 3, &mut cfg.sparse_safe, 0, c_int::MAX)?;
    Ok(3)
}

unsafe fn cfg_encode_max_depth(l: *mut lua_State) -> Ret {
    let cfg = arg_init(l, 1)?;
    integer_option(l, 1, &mut cfg.encode_max_depth, 1, c_int::MAX)
}

unsafe fn cfg_decode_max_depth(l: *mut lua_State) -> Ret {
    let cfg = arg_init(l, 1)?;
    integer_option(l, 1, &mut cfg.decode_max_depth, 1, c_int::MAX)
}

unsafe fn cfg_encode_number_precision(l: *mut lua_State) -> Ret {
    let cfg = arg_init(l, 1)?;
    integer_option(l, 1, &mut cfg.number_precision, 1, 14)
}

unsafe fn cfg_encode_keep_buffer(l: *mut lua_State) -> Ret {
    // The encode buffer is not kept between calls here; the setting is only reported.
    let cfg = arg_init(l, 1)?;
    enum_option(l, 1, &mut cfg.keep_buffer, ON_OFF)
}

unsafe fn cfg_encode_invalid_numbers(l: *mut lua_State) -> Ret {
    let cfg = arg_init(l, 1)?;
    enum_option(l, 1, &mut cfg.encode_invalid_numbers, &["off", "on", "null"])
}

unsafe fn cfg_decode_invalid_numbers(l: *mut lua_State) -> Ret {
    let cfg = arg_init(l, 1)?;
    enum_option(l, 1, &mut cfg.decode_invalid_numbers, ON_OFF)
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/// `Cannot serialise <type of the value at idx>: <reason>`.
unsafe fn encode_error(l: *mut lua_State, idx: c_int, reason: &str) -> Raise {
    let m = format!("Cannot serialise {}: {}", capi::type_name(l, idx), reason);
    capi::error(l, m.as_bytes())
}

/// Whether a byte is written escaped in a JSON string.
const fn escaped(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\' || c == b'/' || c == 0x7f
}

fn append_string(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &c) in s.iter().enumerate() {
        if !escaped(c) {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        start = i + 1;
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(c >> 4) as usize]);
                out.push(HEX[(c & 15) as usize]);
            }
        }
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

unsafe fn append_number(l: *mut lua_State, cfg: &Config, out: &mut Vec<u8>, idx: c_int) -> Result<(), Raise> {
    let num = lua_tonumber(l, idx);
    match cfg.encode_invalid_numbers {
        0 if !num.is_finite() => return Err(encode_error(l, idx, "must not be NaN or Inf")),
        1 if num.is_nan() => {
            out.extend_from_slice(b"nan");
            return Ok(());
        }
        0 | 1 => {}
        _ if !num.is_finite() => {
            out.extend_from_slice(b"null");
            return Ok(());
        }
        _ => {}
    }
    numfmt::push_g(out, num, cfg.number_precision as usize);
    Ok(())
}

/// `(int)d` with x86's result for values out of range.
fn c_double_to_int(d: f64) -> c_int {
    if d.is_nan() || !(-2147483649.0..2147483648.0).contains(&d) {
        c_int::MIN
    } else {
        d as c_int
    }
}

/// The length of the table on top of the stack if it is an array, else -1 (`lua_array_length`).
unsafe fn array_length(l: *mut lua_State, cfg: &Config) -> Result<c_int, Raise> {
    let (mut max, mut items): (c_int, c_int) = (0, 0);
    lua_pushnil(l);
    while lua_next(l, -2) != 0 {
        if lua_type(l, -2) == LUA_TNUMBER {
            let k = lua_tonumber(l, -2);
            if k != 0.0 && k.floor() == k && k >= 1.0 {
                if k > max as f64 {
                    max = c_double_to_int(k);
                }
                items = items.wrapping_add(1);
                lua_settop(l, -2);
                continue;
            }
        }
        lua_settop(l, -3);
        return Ok(-1);
    }
    if cfg.sparse_ratio > 0 && max > items.wrapping_mul(cfg.sparse_ratio) && max > cfg.sparse_safe {
        if cfg.sparse_convert == 0 {
            return Err(encode_error(l, -1, "excessively sparse array"));
        }
        return Ok(-1);
    }
    Ok(max)
}

/// A table being written (it is on the Lua stack; for an object, so is the current key).
enum Open {
    /// Next index and length.
    Array(c_int, c_int),
    /// Whether no member was written yet.
    Object(bool),
}

/// Encode the value on top of the stack (it stays there).
unsafe fn encode_value(l: *mut lua_State, cfg: &Config, out: &mut Vec<u8>) -> Result<(), Raise> {
    let mut open: Vec<Open> = Vec::new();
    lua_pushvalue(l, -1);
    'value: loop {
        // Write the value on top of the stack and pop it; a table stays there, opened.
        let opened = match lua_type(l, -1) {
            LUA_TSTRING => {
                append_string(out, super::to_bytes(l, -1).unwrap_or(b""));
                false
            }
            LUA_TNUMBER => {
                append_number(l, cfg, out, -1)?;
                false
            }
            LUA_TBOOLEAN => {
                out.extend_from_slice(if lua_toboolean(l, -1) != 0 { b"true" } else { b"false" });
                false
            }
            LUA_TNIL => {
                out.extend_from_slice(b"null");
                false
            }
            LUA_TLIGHTUSERDATA if lua_touserdata(l, -1).is_null() => {
                out.extend_from_slice(b"null");
                false
            }
            LUA_TTABLE => {
                let depth = open.len() as c_int + 1;
                if !(depth <= cfg.encode_max_depth && lua_checkstack(l, 3) != 0) {
                    let m = format!("Cannot serialise, excessive nesting ({depth})");
                    return Err(capi::error(l, m.as_bytes()));
                }
                super::readonly::unproxy(l, -1);
                let len = array_length(l, cfg)?;
                if len > 0 {
                    out.push(b'[');
                    open.push(Open::Array(1, len));
                } else {
                    out.push(b'{');
                    lua_pushnil(l);
                    open.push(Open::Object(true));
                }
                true
            }
            _ => return Err(encode_error(l, -1, "type not supported")),
        };
        if !opened {
            lua_settop(l, -2);
        }
        // Find the next value to write, closing finished tables.
        loop {
            let Some(top) = open.last_mut() else { return Ok(()) };
            match top {
                Open::Array(i, len) => {
                    if *i <= *len {
                        if *i > 1 {
                            out.push(b',');
                        }
                        lua_rawgeti(l, -1, *i);
                        *i += 1;
                        continue 'value;
                    }
                    out.push(b']');
                    lua_settop(l, -2);
                }
                Open::Object(first) => {
                    // Stack: table, key.
                    if lua_next(l, -2) != 0 {
                        if !*first {
                            out.push(b',');
                        }
                        *first = false;
                        match lua_type(l, -2) {
                            LUA_TNUMBER => {
                                out.push(b'"');
                                append_number(l, cfg, out, -2)?;
                                out.extend_from_slice(b"\":");
                            }
                            LUA_TSTRING => {
                                append_string(out, super::to_bytes(l, -2).unwrap_or(b""));
                                out.push(b':');
                            }
                            _ => return Err(encode_error(l, -2, "table key must be a number or string")),
                        }
                        continue 'value;
                    }
                    out.push(b'}');
                    lua_settop(l, -2);
                }
            }
            open.pop();
        }
    }
}

unsafe fn encode(l: *mut lua_State) -> Ret {
    let cfg = *config(l)?;
    if lua_gettop(l) != 1 {
        return Err(capi::arg_error(l, 1, b"expected 1 argument"));
    }
    let mut out = Vec::new();
    encode_value(l, &cfg, &mut out)?;
    capi::push_str(l, &out);
    Ok(1)
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str,
    Number,
    Boolean,
    Null,
    Colon,
    Comma,
    End,
    Error,
}

impl Tok {
    fn name(self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str => "T_STRING",
            Tok::Number => "T_NUMBER",
            Tok::Boolean => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error => "T_ERROR",
        }
    }
}

struct Token {
    t: Tok,
    /// Offset of the token (of the error for T_ERROR).
    index: usize,
    num: f64,
    boolean: bool,
    err: &'static str,
}

struct Parser<'a> {
    /// The text up to its first NUL.
    data: &'a [u8],
    p: usize,
    /// The decoded text of the last string token.
    tmp: Vec<u8>,
    invalid_numbers: bool,
}

impl Parser<'_> {
    /// The byte at `i`; the end reads as NUL (the C parser's terminator).
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    fn starts(&self, s: &[u8]) -> bool {
        self.data[self.p.min(self.data.len())..].starts_with(s)
    }

    fn error(&self, t: &mut Token, what: &'static str) {
        t.t = Tok::Error;
        t.index = self.p;
        t.err = what;
    }

    /// `json_is_invalid_number`: a number strict JSON rejects (leading +, 0x, leading zero,
    /// inf, nan).
    fn is_invalid_number(&self) -> bool {
        let mut p = self.p;
        if self.at(p) == b'+' {
            return true;
        }
        if self.at(p) == b'-' {
            p += 1;
        }
        if self.at(p) == b'0' {
            let c2 = self.at(p + 1);
            return (c2 | 0x20) == b'x' || c2.is_ascii_digit();
        } else if (self.at(p) as i8) <= b'9' as i8 {
            return false;
        }
        let rest = &self.data[p.min(self.data.len())..];
        let ic = |w: &[u8]| rest.len() >= 3 && rest[..3].eq_ignore_ascii_case(w);
        ic(b"inf") || ic(b"nan")
    }

    fn number(&mut self, t: &mut Token) {
        let (v, n) = numfmt::strtod(self.data.get(self.p..).unwrap_or(&[]));
        t.t = Tok::Number;
        t.num = v;
        if n == 0 {
            self.error(t, "invalid number");
        } else {
            self.p += n;
        }
    }

    fn hex4(&self, i: usize) -> Option<u32> {
        let mut v = 0;
        for k in 0..4 {
            v = (v << 4) | (self.at(i + k) as char).to_digit(16)?;
        }
        Some(v)
    }

    /// `\uXXXX` (with a surrogate pair) at the cursor into `tmp`.
    fn unicode_escape(&mut self) -> bool {
        let Some(mut cp) = self.hex4(self.p + 2) else { return false };
        let mut len = 6;
        if cp & 0xF800 == 0xD800 {
            if cp & 0x400 != 0 || self.at(self.p + 6) != b'\\' || self.at(self.p + 7) != b'u' {
                return false;
            }
            let Some(low) = self.hex4(self.p + 8) else { return false };
            if low & 0xFC00 != 0xDC00 {
                return false;
            }
            cp = (((cp & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            len = 12;
        }
        let mut b = [0u8; 4];
        let n = match cp {
            0..=0x7F => {
                b[0] = cp as u8;
                1
            }
            0x80..=0x7FF => {
                b[0] = (cp >> 6) as u8 | 0xC0;
                b[1] = (cp & 0x3F) as u8 | 0x80;
                2
            }
            0x800..=0xFFFF => {
                b[0] = (cp >> 12) as u8 | 0xE0;
                b[1] = ((cp >> 6) & 0x3F) as u8 | 0x80;
                b[2] = (cp & 0x3F) as u8 | 0x80;
                3
            }
            _ => {
                b[0] = (cp >> 18) as u8 | 0xF0;
                b[1] = ((cp >> 12) & 0x3F) as u8 | 0x80;
                b[2] = ((cp >> 6) & 0x3F) as u8 | 0x80;
                b[3] = (cp & 0x3F) as u8 | 0x80;
                4
            }
        };
        self.tmp.extend_from_slice(&b[..n]);
        self.p += len;
        true
    }

    fn string(&mut self, t: &mut Token) {
        self.p += 1;
        self.tmp.clear();
        loop {
            let rest = self.data.get(self.p..).unwrap_or(&[]);
            let run = memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len());
            self.tmp.extend_from_slice(&rest[..run]);
            self.p += run;
            let c = self.at(self.p);
            if c == b'"' {
                break;
            }
            if c == 0 {
                return self.error(t, "unexpected end of string");
            }
            let mut out = c;
            if c == b'\\' {
                out = match self.at(self.p + 1) {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 0x08,
                    b't' => b'\t',
                    b'n' => b'\n',
                    b'f' => 0x0c,
                    b'r' => b'\r',
                    b'u' => {
                        if self.unicode_escape() {
                            continue;
                        }
                        return self.error(t, "invalid unicode escape code");
                    }
                    _ => return self.error(t, "invalid escape code"),
                };
                self.p += 1;
            }
            self.tmp.push(out);
            self.p += 1;
        }
        self.p += 1;
        t.t = Tok::Str;
    }

    fn next_token(&mut self) -> Token {
        let mut t = Token { t: Tok::End, index: 0, num: 0.0, boolean: false, err: "" };
        while matches!(self.at(self.p), b' ' | b'\t' | b'\n' | b'\r') {
            self.p += 1;
        }
        t.index = self.p;
        let c = self.at(self.p);
        let single = match c {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b',' => Some(Tok::Comma),
            b':' => Some(Tok::Colon),
            0 => return t,
            _ => None,
        };
        if let Some(s) = single {
            t.t = s;
            self.p += 1;
            return t;
        }
        match c {
            b'"' => self.string(&mut t),
            b'-' | b'0'..=b'9' => {
                if !self.invalid_numbers && self.is_invalid_number() {
                    self.error(&mut t, "invalid number");
                } else {
                    self.number(&mut t);
                }
            }
            b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'+' => {
                if self.starts(b"true") {
                    t.t = Tok::Boolean;
                    t.boolean = true;
                    self.p += 4;
                } else if self.starts(b"false") {
                    t.t = Tok::Boolean;
                    self.p += 5;
                } else if self.starts(b"null") {
                    t.t = Tok::Null;
                    self.p += 4;
                } else if self.invalid_numbers && self.is_invalid_number() {
                    self.number(&mut t);
                } else {
                    self.error(&mut t, "invalid token");
                }
            }
            _ => self.error(&mut t, "invalid token"),
        }
        t
    }
}

unsafe fn parse_error(l: *mut lua_State, exp: &str, t: &Token) -> Raise {
    let found = if t.t == Tok::Error { t.err } else { t.t.name() };
    let m = format!("Expected {} but found {} at character {}", exp, found, t.index + 1);
    capi::error(l, m.as_bytes())
}

/// An object member's key (`t`, a string) and its colon: pushes the key, returns the token
/// that starts the value.
unsafe fn object_key(l: *mut lua_State, ps: &mut Parser, t: Token) -> Result<Token, Raise> {
    if t.t != Tok::Str {
        return Err(parse_error(l, "object key string", &t));
    }
    capi::push_str(l, &ps.tmp);
    let colon = ps.next_token();
    if colon.t != Tok::Colon {
        return Err(parse_error(l, "colon", &colon));
    }
    Ok(ps.next_token())
}

enum Ctx {
    /// The next array index.
    Array(c_int),
    Object,
}

/// Decode the whole text into one value on the stack (`json_decode`'s parse, iteratively).
unsafe fn decode_value(l: *mut lua_State, cfg: &Config, ps: &mut Parser) -> Result<(), Raise> {
    let mut stack: Vec<Ctx> = Vec::new();
    let mut t = ps.next_token();
    'value: loop {
        // `json_process_value`: push a scalar or open a container.
        match t.t {
            Tok::Str => capi::push_str(l, &ps.tmp),
            Tok::Number => lua_pushnumber(l, t.num),
            Tok::Boolean => lua_pushboolean(l, t.boolean as c_int),
            Tok::Null => lua_pushlightuserdata(l, std::ptr::null_mut()),
            Tok::ObjBegin | Tok::ArrBegin => {
                let is_obj = t.t == Tok::ObjBegin;
                let depth = stack.len() as c_int + 1;
                if !(depth <= cfg.decode_max_depth && lua_checkstack(l, if is_obj { 3 } else { 2 }) != 0) {
                    let m = format!("Found too many nested data structures ({}) at character {}", depth, ps.p);
                    return Err(capi::error(l, m.as_bytes()));
                }
                lua_createtable(l, 0, 0);
                t = ps.next_token();
                if is_obj {
                    stack.push(Ctx::Object);
                    if t.t != Tok::ObjEnd {
                        // The first key.
                        t = object_key(l, ps, t)?;
                        continue 'value;
                    }
                } else {
                    stack.push(Ctx::Array(1));
                    if t.t != Tok::ArrEnd {
                        continue 'value;
                    }
                }
                // An empty container: it is the finished value.
                stack.pop();
            }
            _ => return Err(parse_error(l, "value", &t)),
        }
        // A value is on top: store it into its container, then read on.
        loop {
            match stack.last_mut() {
                None => return Ok(()),
                Some(Ctx::Array(i)) => {
                    lua_rawseti(l, -2, *i);
                    *i += 1;
                    t = ps.next_token();
                    if t.t == Tok::ArrEnd {
                        stack.pop();
                        continue;
                    }
                    if t.t != Tok::Comma {
                        return Err(parse_error(l, "comma or array end", &t));
                    }
                    t = ps.next_token();
                    continue 'value;
                }
                Some(Ctx::Object) => {
                    lua_rawset(l, -3);
                    t = ps.next_token();
                    if t.t == Tok::ObjEnd {
                        stack.pop();
                        continue;
                    }
                    if t.t != Tok::Comma {
                        return Err(parse_error(l, "comma or object end", &t));
                    }
                    let key = ps.next_token();
                    t = object_key(l, ps, key)?;
                    continue 'value;
                }
            }
        }
    }
}

unsafe fn decode(l: *mut lua_State) -> Ret {
    if lua_gettop(l) != 1 {
        return Err(capi::arg_error(l, 1, b"expected 1 argument"));
    }
    let cfg = *config(l)?;
    let data = capi::check_bytes(l, 1)?;
    if data.len() >= 2 && (data[0] == 0 || data[1] == 0) {
        return Err(capi::error(l, b"JSON parser does not support UTF-16 or UTF-32"));
    }
    // The C parser reads a C string: the text ends at the first NUL.
    let text = &data[..memchr::memchr(0, data).unwrap_or(data.len())];
    let mut ps = Parser { data: text, p: 0, tmp: Vec::new(), invalid_numbers: cfg.decode_invalid_numbers != 0 };
    decode_value(l, &cfg, &mut ps)?;
    let t = ps.next_token();
    if t.t != Tok::End {
        return Err(parse_error(l, "the end", &t));
    }
    Ok(1)
}

// ---------------------------------------------------------------------------------------------
// Module
// ---------------------------------------------------------------------------------------------

cfn!(c_encode => encode);
cfn!(c_decode => decode);
cfn!(c_encode_sparse_array => cfg_encode_sparse_array);
cfn!(c_encode_max_depth => cfg_encode_max_depth);
cfn!(c_decode_max_depth => cfg_decode_max_depth);
cfn!(c_encode_number_precision => cfg_encode_number_precision);
cfn!(c_encode_keep_buffer => cfg_encode_keep_buffer);
cfn!(c_encode_invalid_numbers => cfg_encode_invalid_numbers);
cfn!(c_decode_invalid_numbers => cfg_decode_invalid_numbers);
cfn!(c_new => new_module);

unsafe fn new_module(l: *mut lua_State) -> Ret {
    push_lib(l);
    Ok(1)
}

/// Push a new `cjson` table with its own configuration.
pub unsafe fn push_lib(l: *mut lua_State) {
    lua_createtable(l, 0, 0);
    let cfg = lua_newuserdata(l, std::mem::size_of::<Config>()) as *mut Config;
    cfg.write(DEFAULTS);
    let funcs: [(&std::ffi::CStr, lua_CFunction); 10] = [
        (c"encode", c_encode),
        (c"decode", c_decode),
        (c"encode_sparse_array", c_encode_sparse_array),
        (c"encode_max_depth", c_encode_max_depth),
        (c"decode_max_depth", c_decode_max_depth),
        (c"encode_number_precision", c_encode_number_precision),
        (c"encode_keep_buffer", c_encode_keep_buffer),
        (c"encode_invalid_numbers", c_encode_invalid_numbers),
        (c"decode_invalid_numbers", c_decode_invalid_numbers),
        (c"new", c_new),
    ];
    for (name, f) in funcs {
        lua_pushvalue(l, -1);
        lua_pushcclosure(l, f, 1);
        lua_setfield(l, -3, name.as_ptr());
    }
    lua_settop(l, -2);
    lua_pushlightuserdata(l, std::ptr::null_mut());
    lua_setfield(l, -2, c"null".as_ptr());
    capi::push_str(l, b"cjson");
    lua_setfield(l, -2, c"_NAME".as_ptr());
    capi::push_str(l, b"2.1.0");
    lua_setfield(l, -2, c"_VERSION".as_ptr());
}
