//! Command statistics (INFO commandstats / errorstats), kept per thread and summed on demand so
//! that the request path bumps no shared counters.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

#[derive(Default, Clone, Copy, Debug)]
pub struct CmdStat {
    pub calls: u64,
    pub usec: u64,
    pub rejected: u64,
    pub failed: u64,
}

/// Command name → stats. Keyed by the name's address (names are statics from the command
/// table), so recording a call hashes one word instead of the whole name.
#[derive(Default)]
pub struct CmdMap(hashbrown::HashMap<usize, (&'static str, CmdStat)>);

impl CmdMap {
    pub fn entry(&mut self, name: &'static str) -> &mut CmdStat {
        &mut self.0.entry(name.as_ptr() as usize).or_insert((name, CmdStat::default())).1
    }
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &CmdStat)> + '_ {
        self.0.values().map(|(n, s)| (*n, s))
    }
    pub fn values(&self) -> impl Iterator<Item = &CmdStat> + '_ {
        self.0.values().map(|(_, s)| s)
    }
}

#[derive(Default)]
pub struct ThreadStats {
    pub cmds: CmdMap,
    pub errors: HashMap<String, u64>,
    pub total_commands: u64,
    pub rejected_unknown: u64,
}

fn registry() -> &'static Mutex<Vec<Arc<Mutex<ThreadStats>>>> {
    static R: OnceLock<Mutex<Vec<Arc<Mutex<ThreadStats>>>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(Vec::new()))
}

thread_local! {
    static LOCAL: Arc<Mutex<ThreadStats>> = {
        let s = Arc::new(Mutex::new(ThreadStats::default()));
        registry().lock().push(s.clone());
        s
    };
}

pub fn record(name: &'static str, usec: u64, failed: bool) {
    LOCAL.with(|l| {
        let mut l = l.lock();
        l.total_commands += 1;
        let e = l.cmds.entry(name);
        e.calls += 1;
        e.usec += usec;
        if failed {
            e.failed += 1;
        }
    })
}

pub fn rejected(name: &'static str) {
    LOCAL.with(|l| {
        let mut l = l.lock();
        l.cmds.entry(name).rejected += 1;
        *l.errors.entry("ERR".into()).or_default() += 0;
    })
}

/// `n` failed calls of `name` whose error replies do not count in errorstats (a script
/// returning an error redis.call already counted).
pub fn failed(name: &'static str, n: u64) {
    LOCAL.with(|l| l.lock().cmds.entry(name).failed += n)
}

/// An unknown command or arity error (no command to attribute it to).
pub fn reject() {
    LOCAL.with(|l| {
        let mut l = l.lock();
        l.rejected_unknown += 1;
        *l.errors.entry("ERR".into()).or_default() += 1;
    })
}

pub fn error_code(code: &str) {
    LOCAL.with(|l| {
        *l.lock().errors.entry(code.to_string()).or_default() += 1;
    })
}

/// Summed statistics of all threads.
pub fn snapshot() -> ThreadStats {
    let mut t = ThreadStats::default();
    for s in registry().lock().iter() {
        let s = s.lock();
        t.total_commands += s.total_commands;
        t.rejected_unknown += s.rejected_unknown;
        for (k, v) in s.cmds.iter() {
            let e = t.cmds.entry(k);
            e.calls += v.calls;
            e.usec += v.usec;
            e.rejected += v.rejected;
            e.failed += v.failed;
        }
        for (k, v) in s.errors.iter() {
            *t.errors.entry(k.clone()).or_default() += v;
        }
    }
    t
}

pub fn reset() {
    for s in registry().lock().iter() {
        *s.lock() = ThreadStats::default();
    }
}
