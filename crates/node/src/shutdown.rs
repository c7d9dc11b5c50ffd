//! Shutting down as redis-server 7.0 does (server.c's prepareForShutdown / finishShutdown):
//! SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT], SIGTERM / SIGINT with `shutdown-on-sigterm` /
//! `shutdown-on-sigint`, and `shutdown-timeout` (wait for lagging replicas, writes paused).
//!
//! A shutdown is *requested* (a signal arrived: the cron starts it, as the signal handler
//! itself must not save), then *initiated* (waiting for replicas until they acknowledge the
//! primary's offset or the timeout passes), then *finished* (final RDB, AOF fsync, pidfile
//! removed) and the process exits 0 — or it fails and is cancelled (the node keeps serving;
//! clients blocked in SHUTDOWN get Redis's error).

use crate::node::{now_ms, Node};
use crate::persistence::log_line as log;
use parking_lot::Mutex;
use std::sync::atomic::Ordering::Relaxed;

pub const NOSAVE: u8 = 1;
pub const SAVE: u8 = 2;
pub const NOW: u8 = 4;
pub const FORCE: u8 = 8;

/// The signal that asked for a shutdown (what the log and `shutdown-on-*` refer to).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Signal {
    Term,
    Int,
}

#[derive(Default)]
struct State {
    /// A signal asked for a shutdown the cron has not started yet (server.shutdown_asap).
    requested: Option<Signal>,
    /// Waiting for replicas until this time (server.shutdown_mstime); 0: not initiated.
    deadline_ms: u64,
    flags: u8,
}

/// Shutdown state of a node.
#[derive(Default)]
pub struct Shutdown {
    state: Mutex<State>,
    /// Writes are paused while a shutdown waits for replicas (PAUSE_DURING_SHUTDOWN).
    pub pausing_writes: std::sync::atomic::AtomicBool,
    /// Bumped when an initiated shutdown is cancelled: clients blocked in SHUTDOWN (which
    /// noted the value they saw) answer the error.
    pub cancels: std::sync::atomic::AtomicU64,
    pub cancelled: tokio::sync::Notify,
    /// Wakes the shutdown cron (a signal arrived).
    pub kick: tokio::sync::Notify,
}

/// What a SHUTDOWN (or a signal) led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything is saved: exit(0) now.
    Exit,
    /// Waiting for lagging replicas (or another shutdown is already under way).
    Waiting,
    /// The final save failed (without FORCE): the node goes on serving.
    Failed,
}

/// Parse `shutdown-on-sigterm` / `shutdown-on-sigint` ("default", or any of save, nosave,
/// now, force). Err: Redis's CONFIG SET error text.
pub fn parse_sig_flags(v: &str) -> Result<u8, String> {
    let mut f = 0;
    for w in v.split_whitespace() {
        f |= match w.to_ascii_lowercase().as_str() {
            "default" => 0,
            "save" => SAVE,
            "nosave" => NOSAVE,
            "now" => NOW,
            "force" => FORCE,
            _ => return Err("argument(s) must be one of the following: default, save, nosave, now, force".into()),
        };
    }
    if f & SAVE != 0 && f & NOSAVE != 0 {
        return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
    }
    Ok(f)
}

/// The canonical `shutdown-on-*` value CONFIG GET shows.
pub fn sig_flags_name(f: u8) -> String {
    let names: Vec<&str> = [(SAVE, "save"), (NOSAVE, "nosave"), (NOW, "now"), (FORCE, "force")]
        .iter()
        .filter(|(b, _)| f & b != 0)
        .map(|(_, n)| *n)
        .collect();
    if names.is_empty() {
        "default".into()
    } else {
        names.join(" ")
    }
}

fn sig_flags(srv: &Node, sig: Signal) -> u8 {
    let name = if sig == Signal::Term { "shutdown-on-sigterm" } else { "shutdown-on-sigint" };
    parse_sig_flags(&srv.config.get(name).unwrap_or_default()).unwrap_or(0)
}

/// The signal handler's part (sigShutdownHandler): log and leave the work to the cron.
/// Returns true when the process must exit(1) at once (a second SIGINT: "You insist").
pub fn on_signal(srv: &Node, sig: Signal) -> bool {
    let mut st = srv.shutdown_ctl.state.lock();
    if sig == Signal::Int && st.requested.is_some() {
        log('#', "You insist... exiting now.");
        return true;
    }
    let msg = if crate::persistence::is_loading(srv) {
        "Received shutdown signal during loading, scheduling shutdown."
    } else if sig == Signal::Term {
        "Received SIGTERM scheduling shutdown..."
    } else {
        "Received SIGINT scheduling shutdown..."
    };
    log('#', msg);
    st.requested = Some(sig);
    drop(st);
    srv.shutdown_ctl.kick.notify_one();
    false
}

/// serverCron's shutdown part: start a shutdown a signal asked for, or finish one whose
/// replicas caught up or whose timeout passed. Blocking (it may save): run it off the async
/// workers. True: exit(0) now.
pub fn cron(srv: &Node) -> bool {
    let (requested, deadline) = {
        let st = srv.shutdown_ctl.state.lock();
        (st.requested, st.deadline_ms)
    };
    if deadline == 0 {
        let Some(sig) = requested else { return false };
        return match prepare(srv, sig_flags(srv, sig)) {
            Outcome::Exit => true,
            Outcome::Waiting => false,
            Outcome::Failed => {
                srv.shutdown_ctl.state.lock().requested = None;
                false
            }
        };
    }
    if now_ms() >= deadline || ready(srv) {
        return finish(srv) == Outcome::Exit;
    }
    false
}

/// prepareForShutdown.
pub fn prepare(srv: &Node, mut flags: u8) -> Outcome {
    {
        let mut st = srv.shutdown_ctl.state.lock();
        if st.deadline_ms != 0 {
            return Outcome::Waiting;
        }
        // A partly loaded dataset is never saved over the file it came from.
        if crate::persistence::is_loading(srv) {
            flags = (flags & !SAVE) | NOSAVE;
        }
        st.flags = flags;
        log('#', "User requested shutdown...");
        let timeout = srv.config.get_i64("shutdown-timeout");
        if flags & NOW == 0 && timeout != 0 && !ready(srv) {
            st.deadline_ms = now_ms() + timeout as u64 * 1000;
            srv.shutdown_ctl.pausing_writes.store(true, Relaxed);
            drop(st);
            srv.repl.request_acks();
            log('*', "Waiting for replicas before shutting down.");
            return Outcome::Waiting;
        }
    }
    finish(srv)
}

/// isReadyToShutdown: every replica acknowledged the primary's offset.
fn ready(srv: &Node) -> bool {
    let off = srv.repl.master_offset();
    srv.repl.primary.lock().replicas.iter().all(|r| r.ack_off.load(Relaxed) == off)
}

/// finishShutdown: log lagging replicas, stop background saves, fsync the AOF, save the
/// final RDB (a failure cancels the shutdown unless FORCE), remove the pidfile.
pub fn finish(srv: &Node) -> Outcome {
    let flags = srv.shutdown_ctl.state.lock().flags;
    let (save, nosave, force) = (flags & SAVE != 0, flags & NOSAVE != 0, flags & FORCE != 0);
    {
        let off = srv.repl.master_offset();
        let m = srv.repl.primary.lock();
        let mut lagging = 0;
        for r in &m.replicas {
            let ack = r.ack_off.load(Relaxed);
            if ack != off {
                lagging += 1;
                let online = r.state.load(Relaxed) == crate::replication::STATE_ONLINE;
                let lag = if online { (now_ms().saturating_sub(r.ack_ms.load(Relaxed))) / 1000 } else { 0 };
                log(
                    '#',
                    &format!(
                        "Lagging replica {}:{} reported offset {} behind master, lag={}, state={}.",
                        r.ip,
                        r.port,
                        off as i64 - ack as i64,
                        lag,
                        crate::replication::state_name(r.state.load(Relaxed))
                    ),
                );
            }
        }
        if !m.replicas.is_empty() {
            let n = m.replicas.len();
            log('*', &format!("{} of {} replicas are in sync when shutting down.", n - lagging, n));
        }
    }
    if crate::persistence::shutdown_save(srv, save, nosave, force).is_err() {
        log('#', "Errors trying to shut down the server. Check the logs for more information.");
        cancel(srv);
        return Outcome::Failed;
    }
    let pidfile = srv.config.get("pidfile").unwrap_or_default();
    if !pidfile.is_empty() {
        log('*', "Removing the pid file.");
        let _ = std::fs::remove_file(&pidfile);
    }
    srv.shutting_down.store(true, Relaxed);
    srv.shutdown.notify_waiters();
    srv.shutdown.notify_one();
    Outcome::Exit
}

/// cancelShutdown: back to serving; clients blocked in SHUTDOWN get the error.
fn cancel(srv: &Node) {
    let mut st = srv.shutdown_ctl.state.lock();
    *st = State::default();
    srv.shutdown_ctl.pausing_writes.store(false, Relaxed);
    srv.pause.notify.notify_waiters();
    srv.shutdown_ctl.cancels.fetch_add(1, Relaxed);
    srv.shutdown_ctl.cancelled.notify_waiters();
}

/// abortShutdown (SHUTDOWN ABORT). False: no shutdown was initiated or requested.
pub fn abort(srv: &Node) -> bool {
    let (initiated, requested) = {
        let st = srv.shutdown_ctl.state.lock();
        (st.deadline_ms != 0, st.requested.is_some())
    };
    if initiated {
        cancel(srv);
    } else if requested {
        srv.shutdown_ctl.state.lock().requested = None;
    } else {
        return false;
    }
    log('*', "Shutdown manually aborted.");
    true
}

/// The error a client blocked in SHUTDOWN gets when the shutdown is cancelled.
pub const SHUTDOWN_FAILED: &str = "ERR Errors trying to SHUTDOWN. Check logs.";
