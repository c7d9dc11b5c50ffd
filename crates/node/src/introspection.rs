//! What the node records about itself for SLOWLOG, LATENCY, MONITOR, CLIENT PAUSE and INFO's
//! instantaneous_ops_per_sec: each a small component with its own lock, owned by `Node`.

use crate::client::ClientMsg;
use crate::client_registry::Tx;
use crate::node::{now_ms, now_us};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

#[derive(Clone)]
pub struct SlowlogEntry {
    pub id: u64,
    pub time: u64,
    pub micros: u64,
    pub args: Vec<Vec<u8>>,
    pub addr: String,
    pub name: String,
}

/// SLOWLOG: the newest entries first, at most slowlog-max-len.
#[derive(Default)]
pub struct Slowlog {
    inner: Mutex<(u64, VecDeque<SlowlogEntry>)>,
}

impl Slowlog {
    /// Record a command that ran `micros` (arguments cut as Redis: 32 of them, 128 bytes each).
    pub fn push(&self, micros: u64, args: &[&[u8]], addr: &str, name: &str, max_len: usize) {
        let mut a: Vec<Vec<u8>> = Vec::new();
        for (i, x) in args.iter().enumerate() {
            if i == 31 && args.len() > 32 {
                a.push(format!("... ({} more arguments)", args.len() - 31).into_bytes());
                break;
            }
            if x.len() > 128 {
                let mut v = x[..128].to_vec();
                v.extend_from_slice(format!("... ({} more bytes)", x.len() - 128).as_bytes());
                a.push(v);
            } else {
                a.push(x.to_vec());
            }
        }
        let mut sl = self.inner.lock();
        let id = sl.0;
        sl.0 += 1;
        sl.1.push_front(SlowlogEntry {
            id,
            time: now_ms() / 1000,
            micros,
            args: a,
            addr: addr.into(),
            name: name.into(),
        });
        while sl.1.len() > max_len {
            sl.1.pop_back();
        }
    }

    /// The newest `count` entries (all with None).
    pub fn newest(&self, count: Option<usize>) -> Vec<SlowlogEntry> {
        let sl = self.inner.lock();
        sl.1.iter().take(count.unwrap_or(usize::MAX)).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.inner.lock().1.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// SLOWLOG RESET (ids keep counting, as Redis).
    pub fn reset(&self) {
        self.inner.lock().1.clear();
    }
}

/// One LATENCY event: when it last happened, its worst latency, and up to 160 (second, ms)
/// samples.
#[derive(Clone, Default)]
pub struct LatencyEvent {
    pub last_s: u64,
    pub max_ms: u64,
    pub history: VecDeque<(u64, u64)>,
}

/// LATENCY LATEST / HISTORY / RESET: events over latency-monitor-threshold.
#[derive(Default)]
pub struct LatencyMonitor {
    events: Mutex<HashMap<String, LatencyEvent>>,
}

impl LatencyMonitor {
    pub fn record(&self, event: &str, ms: u64) {
        let mut l = self.events.lock();
        let e = l.entry(event.to_string()).or_default();
        let now = now_ms() / 1000;
        e.last_s = now;
        e.max_ms = e.max_ms.max(ms);
        match e.history.back_mut() {
            Some(last) if last.0 == now => last.1 = last.1.max(ms),
            _ => e.history.push_back((now, ms)),
        }
        while e.history.len() > 160 {
            e.history.pop_front();
        }
    }

    /// Every event with its state.
    pub fn events(&self) -> Vec<(String, LatencyEvent)> {
        self.events.lock().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    pub fn event(&self, name: &str) -> Option<LatencyEvent> {
        self.events.lock().get(name).cloned()
    }

    /// Forget the named events (all with an empty list); returns how many were forgotten.
    pub fn reset(&self, names: &[String]) -> usize {
        let mut l = self.events.lock();
        if names.is_empty() {
            let n = l.len();
            l.clear();
            return n;
        }
        names.iter().filter(|n| l.remove(n.as_str()).is_some()).count()
    }
}

/// MONITOR clients: each command line is sent to every one of them.
#[derive(Default)]
pub struct Monitors {
    list: Mutex<Vec<(u64, Tx)>>,
    count: AtomicUsize,
}

impl Monitors {
    /// Any MONITOR client connected (checked on every command without the lock).
    #[inline]
    pub fn active(&self) -> bool {
        self.count.load(Relaxed) > 0
    }

    pub fn add(&self, id: u64, tx: Tx) {
        self.list.lock().push((id, tx));
        self.count.fetch_add(1, Relaxed);
    }

    pub fn remove(&self, id: u64) {
        let mut l = self.list.lock();
        let before = l.len();
        l.retain(|(i, _)| *i != id);
        self.count.fetch_sub(before - l.len(), Relaxed);
    }

    /// Send one command, in MONITOR's line format, to every monitor.
    pub fn feed(&self, db: usize, addr: &str, args: &[&[u8]]) {
        let mut line = format!("{:.6} [{} {}]", now_us() as f64 / 1e6, db, addr);
        for a in args {
            line.push_str(" \"");
            for &c in a.iter() {
                match c {
                    b'\\' => line.push_str("\\\\"),
                    b'"' => line.push_str("\\\""),
                    b'\n' => line.push_str("\\n"),
                    b'\r' => line.push_str("\\r"),
                    b'\t' => line.push_str("\\t"),
                    7 => line.push_str("\\a"),
                    8 => line.push_str("\\b"),
                    c if c.is_ascii_graphic() || c == b' ' => line.push(c as char),
                    c => line.push_str(&format!("\\x{:02x}", c)),
                }
            }
            line.push('"');
        }
        for (_, tx) in self.list.lock().iter() {
            let _ = tx.send(ClientMsg::Monitor(line.clone()));
        }
    }
}

/// CLIENT PAUSE state.
#[derive(Clone, Copy)]
pub struct Pause {
    pub until_ms: u64,
    pub write_only: bool,
}

/// CLIENT PAUSE / UNPAUSE. Paused connections wait on `notify` (or their deadline).
pub struct ClientPause {
    state: Mutex<Option<Pause>>,
    /// The end of the pause in force (ms; 0: none), read without the mutex on the request
    /// path and by expiry.
    until: AtomicU64,
    pub notify: tokio::sync::Notify,
}

impl Default for ClientPause {
    fn default() -> Self {
        ClientPause { state: Mutex::new(None), until: AtomicU64::new(0), notify: tokio::sync::Notify::new() }
    }
}

impl ClientPause {
    /// Pause until `until_ms` (writes only with `write_only`). A pause never shortens an
    /// existing one (as Redis: the later deadline and the stricter mode win).
    pub fn pause(&self, until_ms: u64, write_only: bool) {
        let mut p = self.state.lock();
        let (until, write_only) = match *p {
            Some(old) if old.until_ms > now_ms() => (old.until_ms.max(until_ms), old.write_only && write_only),
            _ => (until_ms, write_only),
        };
        *p = Some(Pause { until_ms: until, write_only });
        self.until.store(until, Relaxed);
    }

    /// CLIENT UNPAUSE (and the end of a FAILOVER or shutdown wait): paused clients go on.
    pub fn unpause(&self) {
        *self.state.lock() = None;
        self.until.store(0, Relaxed);
        self.notify.notify_waiters();
    }

    /// The deadline of the pause in force (0: none; may be past).
    #[inline]
    pub fn until(&self) -> u64 {
        self.until.load(Relaxed)
    }

    /// The deadline that holds a command now (reads go through a WRITE pause).
    pub fn holds(&self, is_write: bool) -> Option<u64> {
        let p = (*self.state.lock())?;
        if now_ms() >= p.until_ms {
            *self.state.lock() = None;
            self.until.store(0, Relaxed);
            return None;
        }
        if p.write_only && !is_write {
            return None;
        }
        Some(p.until_ms)
    }
}

/// INFO instantaneous_ops_per_sec: a rate sampled at most every 100 ms, averaged over the last
/// 16 samples (Redis's trackInstantaneousMetric).
pub struct OpsSample {
    inner: Mutex<(u64, u64, VecDeque<f64>)>,
}

impl Default for OpsSample {
    fn default() -> Self {
        OpsSample { inner: Mutex::new((0, now_ms(), VecDeque::new())) }
    }
}

impl OpsSample {
    /// The rate now, given the total number of commands so far.
    pub fn rate(&self, total: u64) -> u64 {
        let mut s = self.inner.lock();
        let now = now_ms();
        if now > s.1 + 100 {
            let rate = (total.saturating_sub(s.0)) as f64 * 1000.0 / (now - s.1) as f64;
            s.2.push_back(rate);
            while s.2.len() > 16 {
                s.2.pop_front();
            }
            s.0 = total;
            s.1 = now;
        }
        if s.2.is_empty() {
            0
        } else {
            (s.2.iter().sum::<f64>() / s.2.len() as f64) as u64
        }
    }
}
