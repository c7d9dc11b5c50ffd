//! Redis 7.0.15's command metadata (vendored `data/redis-commands.json`, see data/README.md):
//! COMMAND DOCS, the tips and key specs of COMMAND INFO, and key extraction from key specs
//! (Redis's `getKeysFromCommandWithSpecs` plus its special getkeys procs) for COMMAND GETKEYS /
//! GETKEYSANDFLAGS. The command table (table.rs) stays the source of truth for which commands
//! exist, their arity, flags and ACL categories; the metadata only describes them.

use crate::table::{flags, Command};
use ferrocache_protocol::resp::{Args, ReplyBuf};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::OnceLock;

static RAW: &str = include_str!("../data/redis-commands.json");

/// Key-spec flags (Redis's CMD_KEY_*), in the order COMMAND prints them.
pub mod kflags {
    pub const RO: u32 = 1 << 0;
    pub const RW: u32 = 1 << 1;
    pub const OW: u32 = 1 << 2;
    pub const RM: u32 = 1 << 3;
    pub const ACCESS: u32 = 1 << 4;
    pub const UPDATE: u32 = 1 << 5;
    pub const INSERT: u32 = 1 << 6;
    pub const DELETE: u32 = 1 << 7;
    pub const NOT_KEY: u32 = 1 << 8;
    pub const INCOMPLETE: u32 = 1 << 9;
    pub const VARIABLE_FLAGS: u32 = 1 << 10;
    pub const NAMES: &[(u32, &str, &str)] = &[
        (RO, "RO", "RO"),
        (RW, "RW", "RW"),
        (OW, "OW", "OW"),
        (RM, "RM", "RM"),
        (ACCESS, "ACCESS", "access"),
        (UPDATE, "UPDATE", "update"),
        (INSERT, "INSERT", "insert"),
        (DELETE, "DELETE", "delete"),
        (NOT_KEY, "NOT_KEY", "not_key"),
        (INCOMPLETE, "INCOMPLETE", "incomplete"),
        (VARIABLE_FLAGS, "VARIABLE_FLAGS", "variable_flags"),
    ];
}

#[derive(Debug, Clone)]
pub enum BeginSearch {
    Index(i32),
    Keyword { keyword: String, startfrom: i32 },
    Unknown,
}

#[derive(Debug, Clone)]
pub enum FindKeys {
    Range { lastkey: i32, keystep: i32, limit: i32 },
    Keynum { keynumidx: i32, firstkey: i32, keystep: i32 },
    Unknown,
}

#[derive(Debug, Clone)]
pub struct KeySpec {
    pub notes: Option<String>,
    pub flags: u32,
    pub bs: BeginSearch,
    pub fk: FindKeys,
}

const ARG_OPTIONAL: u8 = 1;
const ARG_MULTIPLE: u8 = 2;
const ARG_MULTIPLE_TOKEN: u8 = 4;

#[derive(Debug, Clone)]
pub struct Arg {
    pub name: String,
    pub typ: String,
    pub key_spec_index: Option<i64>,
    pub token: Option<String>,
    pub summary: Option<String>,
    pub since: Option<String>,
    pub deprecated_since: Option<String>,
    pub flags: u8,
    /// Only for `oneof` / `block` arguments.
    pub subargs: Option<Vec<Arg>>,
}

/// Redis's special getkeys procs (`get_keys_function` in the JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetKeysProc {
    /// genericGetKeys(store, keycount, firstkey, step=1)
    Generic(usize, usize, usize),
    Sort,
    SortRo,
    Migrate,
    Georadius,
    Xread,
    Set,
    Bitfield,
}

#[derive(Debug, Clone)]
pub struct Doc {
    pub summary: Option<String>,
    pub since: Option<String>,
    pub group: String,
    pub complexity: Option<String>,
    pub doc_flags: Vec<&'static str>,
    pub deprecated_since: Option<String>,
    pub replaced_by: Option<String>,
    pub history: Vec<(String, String)>,
    pub args: Vec<Arg>,
    pub tips: Vec<String>,
    pub key_specs: Vec<KeySpec>,
    pub getkeys: Option<GetKeysProc>,
    /// Redis's command flags, uppercase as in the JSON ("WRITE", "NO_MANDATORY_KEYS", ...).
    pub command_flags: Vec<String>,
    /// Redis's explicit ACL categories, lowercase without '@' ("keyspace", "sortedset", ...).
    pub acl_categories: Vec<String>,
    pub arity: i64,
}

impl Doc {
    pub fn has_flag(&self, f: &str) -> bool {
        self.command_flags.iter().any(|x| x == f)
    }
    /// Redis's `populateCommandLegacyRangeSpec`: (first, last, step) as COMMAND INFO prints
    /// them, and whether the specs make the command's keys movable.
    pub fn legacy_range(&self) -> ((i32, i32, i32), bool) {
        let specs = &self.key_specs;
        if specs.is_empty() {
            return ((0, 0, 0), false);
        }
        let abs = |pos: i32, lastkey: i32| if lastkey >= 0 { lastkey + pos } else { lastkey };
        if specs.len() == 1 {
            if let (BeginSearch::Index(pos), FindKeys::Range { lastkey, keystep, .. }) = (&specs[0].bs, &specs[0].fk) {
                return ((*pos, abs(*pos, *lastkey), *keystep), specs[0].flags & kflags::INCOMPLETE != 0);
            }
        }
        let mut movable = false;
        let (mut first, mut last, mut prev_last) = (i32::MAX, 0i32, 0i32);
        for s in specs {
            let (BeginSearch::Index(pos), FindKeys::Range { lastkey, keystep, .. }) = (&s.bs, &s.fk) else {
                movable = true;
                continue;
            };
            if *keystep != 1 || (prev_last != 0 && prev_last != pos - 1) {
                movable = true;
                continue;
            }
            if s.flags & kflags::INCOMPLETE != 0 {
                movable = true;
            }
            first = first.min(*pos);
            let la = abs(*pos, *lastkey);
            // Unsigned comparison, as Redis does (a negative lastkey wins).
            last = (last as u32).max(la as u32) as i32;
            prev_last = last;
        }
        if first == i32::MAX {
            return ((0, 0, 0), true);
        }
        ((first, last, 1), movable)
    }
}

fn opt_str(v: &Value, k: &str) -> Option<String> {
    match v.get(k) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn int(v: &Value, k: &str) -> i32 {
    v.get(k).and_then(Value::as_i64).unwrap_or(0) as i32
}

fn parse_arg(v: &Value) -> Arg {
    let b = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
    let typ = v["type"].as_str().unwrap_or("string").to_string();
    let subargs = if typ == "oneof" || typ == "block" {
        Some(
            v.get("arguments").and_then(Value::as_array).map(|a| a.iter().map(parse_arg).collect()).unwrap_or_default(),
        )
    } else {
        None
    };
    Arg {
        name: v["name"].as_str().unwrap_or("").to_lowercase(),
        typ,
        key_spec_index: v.get("key_spec_index").and_then(Value::as_i64),
        // Redis's generated commands.c writes the token `""` (MIGRATE's empty key) as the C
        // literal `""""`, which is the empty string: COMMAND DOCS shows it empty.
        token: opt_str(v, "token").map(|t| if t == "\"\"" { String::new() } else { t.to_uppercase() }),
        summary: opt_str(v, "summary"),
        since: opt_str(v, "since"),
        deprecated_since: v.get("deprecated_since").and_then(Value::as_str).map(str::to_string),
        flags: (if b("optional") { ARG_OPTIONAL } else { 0 })
            | (if b("multiple") { ARG_MULTIPLE } else { 0 })
            | (if b("multiple_token") { ARG_MULTIPLE_TOKEN } else { 0 }),
        subargs,
    }
}

fn parse_key_spec(v: &Value) -> KeySpec {
    let mut fl = 0;
    for f in v["flags"].as_array().into_iter().flatten() {
        let f = f.as_str().unwrap_or("");
        if let Some((bit, _, _)) = kflags::NAMES.iter().find(|(_, n, _)| *n == f) {
            fl |= bit;
        }
    }
    let bsv = &v["begin_search"];
    let bs = if let Some(i) = bsv.get("index").filter(|x| !x.is_null()) {
        BeginSearch::Index(int(i, "pos"))
    } else if let Some(k) = bsv.get("keyword").filter(|x| !x.is_null()) {
        BeginSearch::Keyword {
            keyword: k["keyword"].as_str().unwrap_or("").to_string(),
            startfrom: int(k, "startfrom"),
        }
    } else {
        BeginSearch::Unknown
    };
    let fkv = &v["find_keys"];
    let fk = if let Some(r) = fkv.get("range").filter(|x| !x.is_null()) {
        FindKeys::Range { lastkey: int(r, "lastkey"), keystep: int(r, "step"), limit: int(r, "limit") }
    } else if let Some(k) = fkv.get("keynum").filter(|x| !x.is_null()) {
        FindKeys::Keynum { keynumidx: int(k, "keynumidx"), firstkey: int(k, "firstkey"), keystep: int(k, "step") }
    } else {
        FindKeys::Unknown
    };
    KeySpec { notes: opt_str(v, "notes"), flags: fl, bs, fk }
}

fn parse_doc(v: &Value) -> Doc {
    let strs = |k: &str| -> Vec<String> {
        v.get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect()
    };
    let doc_flags = strs("doc_flags")
        .iter()
        .filter_map(|f| match f.as_str() {
            "DEPRECATED" => Some("deprecated"),
            "SYSCMD" => Some("syscmd"),
            _ => None,
        })
        .collect::<Vec<_>>();
    // Printed in Redis's docFlagNames order.
    let doc_flags = ["deprecated", "syscmd"].into_iter().filter(|f| doc_flags.contains(f)).collect();
    let group = v["group"].as_str().unwrap_or("generic").replace('_', "-");
    let getkeys = match v.get("get_keys_function").and_then(Value::as_str) {
        Some("sintercardGetKeys") | Some("zunionInterDiffGetKeys") | Some("lmpopGetKeys") | Some("zmpopGetKeys") => {
            Some(GetKeysProc::Generic(0, 1, 2))
        }
        Some("zunionInterDiffStoreGetKeys") => Some(GetKeysProc::Generic(1, 2, 3)),
        Some("evalGetKeys") | Some("functionGetKeys") | Some("blmpopGetKeys") | Some("bzmpopGetKeys") => {
            Some(GetKeysProc::Generic(0, 2, 3))
        }
        Some("sortGetKeys") => Some(GetKeysProc::Sort),
        Some("sortROGetKeys") => Some(GetKeysProc::SortRo),
        Some("migrateGetKeys") => Some(GetKeysProc::Migrate),
        Some("georadiusGetKeys") => Some(GetKeysProc::Georadius),
        Some("xreadGetKeys") => Some(GetKeysProc::Xread),
        Some("setGetKeys") => Some(GetKeysProc::Set),
        Some("bitfieldGetKeys") => Some(GetKeysProc::Bitfield),
        Some(other) => panic!("redis-commands.json: unknown get_keys_function {other}"),
        None => None,
    };
    Doc {
        summary: opt_str(v, "summary"),
        since: opt_str(v, "since"),
        group,
        complexity: opt_str(v, "complexity"),
        doc_flags,
        deprecated_since: opt_str(v, "deprecated_since"),
        replaced_by: opt_str(v, "replaced_by"),
        history: v
            .get("history")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|h| (h[0].as_str().unwrap_or("").to_string(), h[1].as_str().unwrap_or("").to_string()))
            .collect(),
        args: v.get("arguments").and_then(Value::as_array).into_iter().flatten().map(parse_arg).collect(),
        tips: strs("command_tips").iter().map(|t| t.to_lowercase()).collect(),
        key_specs: v.get("key_specs").and_then(Value::as_array).into_iter().flatten().map(parse_key_spec).collect(),
        getkeys,
        command_flags: strs("command_flags"),
        acl_categories: strs("acl_categories").iter().map(|c| c.to_lowercase()).collect(),
        arity: v["arity"].as_i64().unwrap_or(0),
    }
}

static DOCS: OnceLock<HashMap<String, Doc>> = OnceLock::new();

/// Every command of Redis 7.0.15's metadata, by lowercase full name ("config|get").
pub fn all() -> &'static HashMap<String, Doc> {
    DOCS.get_or_init(|| {
        let v: Value = serde_json::from_str(RAW).expect("data/redis-commands.json is valid JSON");
        v.as_object()
            .expect("data/redis-commands.json is an object")
            .iter()
            // Sentinel-only commands are not part of a redis-server's table.
            .filter(|(_, b)| !b["command_flags"].as_array().is_some_and(|f| f.iter().any(|x| x == "ONLY_SENTINEL")))
            .map(|(k, b)| (k.clone(), parse_doc(b)))
            .collect()
    })
}

/// The metadata of one of our commands (by its table name), if Redis has it.
pub fn doc(c: &Command) -> Option<&'static Doc> {
    all().get(c.name)
}

// ------------------------------------------------------------------ replies

fn flag_set(out: &mut ReplyBuf, names: &[&str]) {
    out.set(names.len());
    for n in names {
        out.simple(n);
    }
}

pub fn key_flag_names(f: u32) -> Vec<&'static str> {
    kflags::NAMES.iter().filter(|(b, _, _)| f & b != 0).map(|(_, _, n)| *n).collect()
}

/// Redis's addReplyFlagsForKeyArgs.
pub fn reply_key_flags(out: &mut ReplyBuf, f: u32) {
    flag_set(out, &key_flag_names(f));
}

/// Command flags as COMMAND INFO prints them (addReplyFlagsForCommand): our table's flags, plus
/// the ones that only describe Redis-side behaviour (asking, no_mandatory_keys,
/// no_async_loading) from the metadata; movablekeys as Redis derives it from the key specs.
pub fn command_flag_names(c: &Command) -> Vec<&'static str> {
    let d = doc(c);
    let json = |f: &str| d.is_some_and(|d| d.has_flag(f));
    let movable = match d {
        Some(d) => d.legacy_range().1,
        None => c.has(flags::MOVABLE_KEYS),
    };
    let t = |f: u64| c.has(f);
    let list: [(bool, &'static str); 20] = [
        (t(flags::WRITE), "write"),
        (t(flags::READONLY), "readonly"),
        (t(flags::DENYOOM), "denyoom"),
        (false, "module"),
        (t(flags::ADMIN), "admin"),
        (t(flags::PUBSUB), "pubsub"),
        (t(flags::NOSCRIPT), "noscript"),
        (t(flags::BLOCKING), "blocking"),
        (t(flags::LOADING), "loading"),
        (t(flags::STALE), "stale"),
        (t(flags::SKIP_MONITOR), "skip_monitor"),
        (t(flags::SKIP_SLOWLOG), "skip_slowlog"),
        (json("ASKING"), "asking"),
        (t(flags::FAST), "fast"),
        (t(flags::NO_AUTH), "no_auth"),
        (json("NO_MANDATORY_KEYS"), "no_mandatory_keys"),
        (json("NO_ASYNC_LOADING"), "no_async_loading"),
        (t(flags::NO_MULTI), "no_multi"),
        (movable, "movablekeys"),
        (t(flags::ALLOW_BUSY), "allow_busy"),
    ];
    list.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect()
}

/// Redis's ACL categories of a command (its metadata's explicit ones plus
/// setImplicitACLCategories from its flags), in Redis's ACLCommandCategories order. Not used by
/// COMMAND INFO (which prints the table's `categories()`): the reference for the ACL work.
pub fn redis_acl_categories(name: &str) -> Option<Vec<&'static str>> {
    const ORDER: &[&str] = &[
        "@keyspace",
        "@read",
        "@write",
        "@set",
        "@sortedset",
        "@list",
        "@hash",
        "@string",
        "@bitmap",
        "@hyperloglog",
        "@geo",
        "@stream",
        "@pubsub",
        "@admin",
        "@fast",
        "@slow",
        "@blocking",
        "@dangerous",
        "@connection",
        "@transaction",
        "@scripting",
    ];
    let d = all().get(name)?;
    let mut cats: Vec<&'static str> =
        ORDER.iter().copied().filter(|c| d.acl_categories.iter().any(|x| x == &c[1..])).collect();
    fn add(cats: &mut Vec<&'static str>, c: &'static str) {
        if !cats.contains(&c) {
            cats.push(c);
        }
    }
    if d.has_flag("WRITE") {
        add(&mut cats, "@write");
    }
    if d.has_flag("READONLY") && !d.acl_categories.iter().any(|x| x == "scripting") {
        add(&mut cats, "@read");
    }
    if d.has_flag("ADMIN") {
        add(&mut cats, "@admin");
        add(&mut cats, "@dangerous");
    }
    if d.has_flag("PUBSUB") {
        add(&mut cats, "@pubsub");
    }
    if d.has_flag("FAST") {
        add(&mut cats, "@fast");
    }
    if d.has_flag("BLOCKING") {
        add(&mut cats, "@blocking");
    }
    if !cats.contains(&"@fast") {
        add(&mut cats, "@slow");
    }
    cats.sort_by_key(|c| ORDER.iter().position(|o| o == c));
    Some(cats)
}

/// (first, last, step) as COMMAND INFO prints them.
pub fn legacy_keys(c: &Command) -> (i32, i32, i32) {
    match doc(c) {
        Some(d) => d.legacy_range().0,
        None if c.first_key > 0 => (c.first_key, c.last_key, c.step),
        None => (0, 0, 0),
    }
}

fn reply_key_specs(out: &mut ReplyBuf, specs: &[KeySpec]) {
    out.set(specs.len());
    for s in specs {
        out.map(if s.notes.is_some() { 4 } else { 3 });
        if let Some(n) = &s.notes {
            out.bulk_str("notes");
            out.bulk_str(n);
        }
        out.bulk_str("flags");
        reply_key_flags(out, s.flags);
        out.bulk_str("begin_search");
        out.map(2);
        out.bulk_str("type");
        match &s.bs {
            BeginSearch::Unknown => {
                out.bulk_str("unknown");
                out.bulk_str("spec");
                out.map(0);
            }
            BeginSearch::Index(pos) => {
                out.bulk_str("index");
                out.bulk_str("spec");
                out.map(1);
                out.bulk_str("index");
                out.int(*pos as i64);
            }
            BeginSearch::Keyword { keyword, startfrom } => {
                out.bulk_str("keyword");
                out.bulk_str("spec");
                out.map(2);
                out.bulk_str("keyword");
                out.bulk_str(keyword);
                out.bulk_str("startfrom");
                out.int(*startfrom as i64);
            }
        }
        out.bulk_str("find_keys");
        out.map(2);
        out.bulk_str("type");
        match &s.fk {
            FindKeys::Unknown => {
                out.bulk_str("unknown");
                out.bulk_str("spec");
                out.map(0);
            }
            FindKeys::Range { lastkey, keystep, limit } => {
                out.bulk_str("range");
                out.bulk_str("spec");
                out.map(3);
                out.bulk_str("lastkey");
                out.int(*lastkey as i64);
                out.bulk_str("keystep");
                out.int(*keystep as i64);
                out.bulk_str("limit");
                out.int(*limit as i64);
            }
            FindKeys::Keynum { keynumidx, firstkey, keystep } => {
                out.bulk_str("keynum");
                out.bulk_str("spec");
                out.map(3);
                out.bulk_str("keynumidx");
                out.int(*keynumidx as i64);
                out.bulk_str("firstkey");
                out.int(*firstkey as i64);
                out.bulk_str("keystep");
                out.int(*keystep as i64);
            }
        }
    }
}

/// The key specs of a command Redis's metadata does not know: one spec derived from the
/// table's (first, last, step).
fn table_key_specs(c: &Command) -> Vec<KeySpec> {
    if c.first_key <= 0 {
        return Vec::new();
    }
    let lastkey = if c.last_key < 0 { c.last_key } else { c.last_key - c.first_key };
    vec![KeySpec {
        notes: None,
        flags: if c.is_write() { kflags::RW } else { kflags::RO },
        bs: BeginSearch::Index(c.first_key),
        fk: FindKeys::Range { lastkey, keystep: c.step, limit: 0 },
    }]
}

/// One COMMAND / COMMAND INFO entry (addReplyCommandInfo).
pub fn reply_info(out: &mut ReplyBuf, c: &Command) {
    let (first, last, step) = legacy_keys(c);
    out.array(10);
    out.bulk_str(c.name);
    out.int(c.arity as i64);
    flag_set(out, &command_flag_names(c));
    out.int(first as i64);
    out.int(last as i64);
    out.int(step as i64);
    flag_set(out, &c.categories());
    match doc(c) {
        Some(d) => {
            out.set(d.tips.len());
            for t in &d.tips {
                out.bulk_str(t);
            }
            reply_key_specs(out, &d.key_specs);
        }
        None => {
            out.set(0);
            reply_key_specs(out, &table_key_specs(c));
        }
    }
    if c.subcommands.is_empty() {
        out.set(0);
    } else {
        out.array(c.subcommands.len());
        for s in c.subcommands {
            reply_info(out, s);
        }
    }
}

fn reply_args(out: &mut ReplyBuf, args: &[Arg]) {
    out.array(args.len());
    for a in args {
        let n = 2
            + a.key_spec_index.is_some() as usize
            + a.token.is_some() as usize
            + a.summary.is_some() as usize
            + a.since.is_some() as usize
            + a.deprecated_since.is_some() as usize
            + (a.flags != 0) as usize
            + a.subargs.is_some() as usize;
        out.map(n);
        out.bulk_str("name");
        out.bulk_str(&a.name);
        out.bulk_str("type");
        out.bulk_str(&a.typ);
        if let Some(i) = a.key_spec_index {
            out.bulk_str("key_spec_index");
            out.int(i);
        }
        for (k, v) in [
            ("token", &a.token),
            ("summary", &a.summary),
            ("since", &a.since),
            ("deprecated_since", &a.deprecated_since),
        ] {
            if let Some(v) = v {
                out.bulk_str(k);
                out.bulk_str(v);
            }
        }
        if a.flags != 0 {
            out.bulk_str("flags");
            let names: Vec<&str> =
                [(ARG_OPTIONAL, "optional"), (ARG_MULTIPLE, "multiple"), (ARG_MULTIPLE_TOKEN, "multiple_token")]
                    .iter()
                    .filter(|(b, _)| a.flags & b != 0)
                    .map(|(_, n)| *n)
                    .collect();
            flag_set(out, &names);
        }
        if let Some(sub) = &a.subargs {
            out.bulk_str("arguments");
            reply_args(out, sub);
        }
    }
}

/// One COMMAND DOCS entry (addReplyCommandDocs).
pub fn reply_docs(out: &mut ReplyBuf, c: &Command) {
    let has_subs = !c.subcommands.is_empty();
    let Some(d) = doc(c) else {
        // Not a Redis command: only what the table knows.
        out.map(1 + has_subs as usize);
        out.bulk_str("group");
        out.bulk_str(c.group);
        reply_doc_subs(out, c);
        return;
    };
    let n = 1
        + d.summary.is_some() as usize
        + d.since.is_some() as usize
        + d.complexity.is_some() as usize
        + !d.doc_flags.is_empty() as usize
        + d.deprecated_since.is_some() as usize
        + d.replaced_by.is_some() as usize
        + !d.history.is_empty() as usize
        + !d.args.is_empty() as usize
        + has_subs as usize;
    out.map(n);
    if let Some(s) = &d.summary {
        out.bulk_str("summary");
        out.bulk_str(s);
    }
    if let Some(s) = &d.since {
        out.bulk_str("since");
        out.bulk_str(s);
    }
    out.bulk_str("group");
    out.bulk_str(&d.group);
    if let Some(s) = &d.complexity {
        out.bulk_str("complexity");
        out.bulk_str(s);
    }
    if !d.doc_flags.is_empty() {
        out.bulk_str("doc_flags");
        flag_set(out, &d.doc_flags);
    }
    if let Some(s) = &d.deprecated_since {
        out.bulk_str("deprecated_since");
        out.bulk_str(s);
    }
    if let Some(s) = &d.replaced_by {
        out.bulk_str("replaced_by");
        out.bulk_str(s);
    }
    if !d.history.is_empty() {
        out.bulk_str("history");
        out.set(d.history.len());
        for (since, changes) in &d.history {
            out.array(2);
            out.bulk_str(since);
            out.bulk_str(changes);
        }
    }
    if !d.args.is_empty() {
        out.bulk_str("arguments");
        reply_args(out, &d.args);
    }
    reply_doc_subs(out, c);
}

fn reply_doc_subs(out: &mut ReplyBuf, c: &Command) {
    if c.subcommands.is_empty() {
        return;
    }
    out.bulk_str("subcommands");
    out.map(c.subcommands.len());
    for s in c.subcommands {
        out.bulk_str(s.name);
        reply_docs(out, s);
    }
}

// ------------------------------------------------------------------ key extraction

/// Why COMMAND GETKEYS found nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum GetKeysError {
    NoKeyArguments,
    InvalidArguments,
}

/// C's atoi: leading blanks, a sign, digits; anything else stops the number.
fn atoi(s: &[u8]) -> i64 {
    let mut i = 0;
    while i < s.len() && (s[i] == b' ' || (b'\t'..=b'\r').contains(&s[i])) {
        i += 1;
    }
    let neg = i < s.len() && s[i] == b'-';
    if i < s.len() && (s[i] == b'-' || s[i] == b'+') {
        i += 1;
    }
    let mut v: i64 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        v = v.saturating_mul(10).saturating_add((s[i] - b'0') as i64);
        i += 1;
    }
    let v = if neg { -v } else { v };
    v.clamp(i32::MIN as i64, i32::MAX as i64)
}

/// Redis's getKeysUsingKeySpecs (search flags: default). None: an invalid or incomplete spec.
fn keys_using_specs(d: &Doc, argv: Args) -> Option<Vec<(usize, u32)>> {
    let argc = argv.len() as i64;
    let mut keys = Vec::new();
    for spec in &d.key_specs {
        if spec.flags & kflags::NOT_KEY != 0 {
            continue;
        }
        let mut first: i64 = 0;
        match &spec.bs {
            BeginSearch::Index(pos) => first = *pos as i64,
            BeginSearch::Keyword { keyword, startfrom } => {
                let sf = *startfrom as i64;
                let start = if sf > 0 { sf } else { argc + sf };
                let end = if sf > 0 { argc - 1 } else { 1 };
                let mut i = start;
                while i != end {
                    if i >= argc || i < 1 {
                        break;
                    }
                    if argv[i as usize].eq_ignore_ascii_case(keyword.as_bytes()) {
                        first = i + 1;
                        break;
                    }
                    i = if start <= end { i + 1 } else { i - 1 };
                }
                if first == 0 {
                    continue;
                }
            }
            BeginSearch::Unknown => return None,
        }
        let (last, step) = match &spec.fk {
            FindKeys::Range { lastkey, keystep, limit } => {
                let (lastkey, limit) = (*lastkey as i64, *limit as i64);
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    first + ((argc - first) / limit + lastkey)
                };
                (last, *keystep as i64)
            }
            FindKeys::Keynum { keynumidx, firstkey, keystep } => {
                let idx = first + *keynumidx as i64;
                if *keynumidx as i64 >= argc || idx >= argc {
                    return None;
                }
                let n = ferrocache_protocol::resp::parse_i64_strict(&argv[idx as usize])?;
                if n < 0 {
                    return None;
                }
                first += *firstkey as i64;
                // Redis computes this in an int.
                let last = first + (n as i32 as i64) - 1;
                (last, *keystep as i64)
            }
            FindKeys::Unknown => return None,
        };
        if last >= argc || last < first || first >= argc {
            return None;
        }
        let mut i = first;
        while i <= last {
            if i < argc && i >= first {
                keys.push((i as usize, spec.flags));
            }
            i += step.max(1);
        }
        if spec.flags & kflags::INCOMPLETE != 0 {
            return None;
        }
    }
    Some(keys)
}

fn generic_get_keys(store: usize, count: usize, firstkey: usize, argv: Args) -> Vec<(usize, u32)> {
    let argc = argv.len() as i64;
    let num = atoi(&argv[count]);
    if num < 1 || num > (argc - firstkey as i64) {
        return Vec::new();
    }
    let mut v: Vec<(usize, u32)> = (0..num as usize).map(|i| (firstkey + i, 0)).collect();
    if store != 0 {
        v.push((store, 0));
    }
    v
}

/// MIGRATE's key positions (migrateGetKeys), for the command table.
pub fn migrate_keys(argv: Args) -> Vec<usize> {
    run_proc(GetKeysProc::Migrate, argv).into_iter().map(|(i, _)| i).collect()
}

fn run_proc(p: GetKeysProc, argv: Args) -> Vec<(usize, u32)> {
    use kflags::*;
    let argc = argv.len();
    let is = |i: usize, s: &str| argv[i].eq_ignore_ascii_case(s.as_bytes());
    match p {
        GetKeysProc::Generic(store, count, first) => generic_get_keys(store, count, first, argv),
        GetKeysProc::SortRo => vec![(1, RO | ACCESS)],
        GetKeysProc::Sort => {
            let mut keys = vec![(1, RO | ACCESS)];
            let mut store = None;
            let mut i = 2;
            while i < argc {
                if is(i, "limit") {
                    i += 2;
                } else if is(i, "get") || is(i, "by") {
                    i += 1;
                } else if is(i, "store") && i + 1 < argc {
                    store = Some(i + 1);
                }
                i += 1;
            }
            if let Some(s) = store {
                keys.push((s, OW | UPDATE));
            }
            keys
        }
        GetKeysProc::Migrate => {
            let (mut first, mut num) = (3usize, 1usize);
            if argc > 6 {
                let mut i = 6;
                while i < argc {
                    if is(i, "keys") {
                        if !argv[3].is_empty() {
                            num = 0;
                        } else {
                            first = i + 1;
                            num = argc - first;
                        }
                        break;
                    }
                    if is(i, "auth") {
                        i += 1;
                    } else if is(i, "auth2") {
                        i += 2;
                    }
                    i += 1;
                }
            }
            (0..num).map(|i| (first + i, RW | ACCESS | DELETE)).collect()
        }
        GetKeysProc::Georadius => {
            let mut stored = None;
            let mut i = 5;
            while i < argc {
                if (is(i, "store") || is(i, "storedist")) && i + 1 < argc {
                    stored = Some(i + 1);
                    i += 1;
                }
                i += 1;
            }
            let mut v = vec![(1, 0)];
            if let Some(s) = stored {
                v.push((s, 0));
            }
            v
        }
        GetKeysProc::Xread => {
            let mut streams = None;
            let mut i = 1;
            while i < argc {
                if is(i, "block") || is(i, "count") {
                    i += 1;
                } else if is(i, "group") {
                    i += 2;
                } else if is(i, "noack") {
                } else if is(i, "streams") {
                    streams = Some(i);
                    break;
                } else {
                    break;
                }
                i += 1;
            }
            let Some(sp) = streams else { return Vec::new() };
            let num = argc - sp - 1;
            if num == 0 || !num.is_multiple_of(2) {
                return Vec::new();
            }
            let num = num / 2;
            (sp + 1..argc - num).map(|i| (i, 0)).collect()
        }
        GetKeysProc::Set => {
            if (3..argc).any(|i| is(i, "get")) {
                vec![(1, RW | ACCESS | UPDATE)]
            } else {
                vec![(1, OW | UPDATE)]
            }
        }
        GetKeysProc::Bitfield => {
            let mut readonly = true;
            let mut i = 2;
            while i < argc {
                let rem = argc - i - 1;
                if is(i, "get") && rem >= 2 {
                    i += 2;
                } else if (is(i, "set") || is(i, "incrby")) && rem >= 3 {
                    readonly = false;
                    break;
                } else if is(i, "overflow") && rem >= 1 {
                    i += 1;
                } else {
                    readonly = false;
                    break;
                }
                i += 1;
            }
            vec![(1, if readonly { RO | ACCESS } else { RW | ACCESS | UPDATE })]
        }
    }
}

/// Redis's getKeysFromCommandWithSpecs for a command with metadata: key positions in `argv`
/// (argv[0] is the command name) with their key-spec flags.
pub fn keys_with_flags(d: &Doc, argv: Args) -> Vec<(usize, u32)> {
    let has_keyspec = d.key_specs.iter().any(|s| s.flags & kflags::NOT_KEY == 0);
    let has_varflags = d.key_specs.iter().any(|s| s.flags & kflags::VARIABLE_FLAGS != 0);
    if has_keyspec && !has_varflags {
        if let Some(k) = keys_using_specs(d, argv) {
            return k;
        }
    }
    match d.getkeys {
        Some(p) => run_proc(p, argv),
        None => Vec::new(),
    }
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS for `c` (already resolved, arity checked by the caller
/// after `has_keys`): the keys with their flags, or why there are none.
pub fn getkeys(c: &Command, argv: Args) -> Result<Vec<(usize, u32)>, GetKeysError> {
    let keys = match doc(c) {
        Some(d) => keys_with_flags(d, argv),
        None => {
            let f = if c.is_write() { kflags::RW } else { kflags::RO };
            c.key_positions(argv).into_iter().map(|p| (p, f)).collect()
        }
    };
    if keys.is_empty() {
        if doc(c).is_some_and(|d| d.has_flag("NO_MANDATORY_KEYS")) {
            return Ok(keys);
        }
        return Err(GetKeysError::InvalidArguments);
    }
    Ok(keys)
}

/// Redis's doesCommandHaveKeys.
pub fn has_keys(c: &Command) -> bool {
    match doc(c) {
        Some(d) => d.getkeys.is_some() || d.key_specs.iter().any(|s| s.flags & kflags::NOT_KEY == 0),
        None => c.first_key > 0 || c.keys_fn.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_parses() {
        let all = all();
        assert!(all.len() > 350, "{}", all.len());
        let lmove = &all["lmove"];
        assert_eq!(lmove.key_specs.len(), 2);
        assert_eq!(lmove.key_specs[0].flags, kflags::RW | kflags::ACCESS | kflags::DELETE);
        assert_eq!(lmove.legacy_range(), ((1, 2, 1), false));
        assert_eq!(all["zunionstore"].legacy_range(), ((1, 1, 1), true));
        assert_eq!(all["mset"].legacy_range(), ((1, -1, 2), false));
        assert!(all.contains_key("config|get"));
        assert!(!all.contains_key("sentinel"));
    }

    fn keys(name: &str, line: &str) -> Vec<(String, Vec<&'static str>)> {
        let o = ferrocache_protocol::resp::OwnedArgs::from_slices(
            &line.split(' ').map(|w| if w == "\"\"" { "" } else { w }).collect::<Vec<_>>(),
        );
        let a = o.args();
        keys_with_flags(&all()[name], a)
            .into_iter()
            .map(|(p, f)| (String::from_utf8_lossy(&a[p]).into_owned(), key_flag_names(f)))
            .collect()
    }

    /// MIGRATE is not implemented (so tests/command_docs.rs cannot ask it): redis-server
    /// 7.0.15's COMMAND GETKEYSANDFLAGS answers, recorded.
    #[test]
    fn migrate_keys_as_redis() {
        let rad = vec!["RW", "access", "delete"];
        assert_eq!(keys("migrate", "MIGRATE host 6379 k 0 1000"), vec![("k".into(), rad.clone())]);
        let abc: Vec<_> = ["a", "b", "c"].iter().map(|k| (k.to_string(), rad.clone())).collect();
        assert_eq!(keys("migrate", "MIGRATE host 6379 \"\" 0 1000 KEYS a b c"), abc);
        assert_eq!(keys("migrate", "MIGRATE host 6379 \"\" 0 1000 COPY REPLACE AUTH pw KEYS a b c"), abc);
        assert_eq!(keys("migrate", "MIGRATE host 6379 \"\" 0 1000 AUTH2 u p KEYS a b c"), abc);
        // A key and KEYS together: a syntax error, no keys ("Invalid arguments").
        assert_eq!(keys("migrate", "MIGRATE host 6379 k 0 1000 KEYS a b"), vec![]);
    }
}
