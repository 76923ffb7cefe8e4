//! The history a verified run records, and its linearizability check.
//!
//! Every verified operation is recorded with the instant its batch was sent
//! and the instant its answer arrived (both from one monotonic origin, so
//! every client of the run shares a clock). A pipelined batch gives each of
//! its operations the batch's interval: wider than the operation's own,
//! which can only make the check accept more, never reject a legal history.
//!
//! ```text
//!   client ──► record(key, sent, done, write v | read v) ──► shard[key % N]
//!   end of run ──► per key: Vec<Op> ──► tidal_core::linearizability ──► report
//! ```
//!
//! A write that failed or timed out is recorded as pending: it may have
//! taken effect at any time after it was sent, or never. A read that failed
//! is not recorded. The checker sees each key start missing, or holding a
//! value from before the run when some read of the key found one.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Instant;

use tidal_core::linearizability::{check_history, Action, Op, DEFAULT_STEP_BUDGET};

use crate::verify::Observed;

/// Most operations a run records (about 40 bytes each). Past it the
/// history is not checked: a history cut at an arbitrary point could hold a
/// read of a write that was never recorded.
pub const MAX_HISTORY_OPS: usize = 20_000_000;
/// Shards of the log, so clients rarely wait on each other.
const SHARDS: usize = 64;
/// How many violations a report describes one by one.
const SAMPLE_LIMIT: usize = 20;
/// The value standing for "something from before this run".
const FOREIGN: u64 = u64::MAX;

#[derive(Debug, Clone, Copy)]
struct Recorded {
    key: u64,
    call: u64,
    /// `u64::MAX` while pending.
    ret: u64,
    is_write: bool,
    /// The version written or read; 0 is missing, [`FOREIGN`] is foreign.
    value: u64,
}

/// Operations of one run, sharded by key.
pub struct HistoryLog {
    origin: Instant,
    shards: Vec<Mutex<Vec<Recorded>>>,
    recorded: std::sync::atomic::AtomicUsize,
}

/// What the linearizability check found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct HistoryCheck {
    pub ops: u64,
    pub keys: u64,
    pub pending_writes: u64,
    /// Keys whose history no order of operations explains.
    pub violations: u64,
    /// Keys the checker gave up on (its search budget ran out).
    pub unknown: u64,
    /// Why the history was not checked, when it was not.
    pub skipped: Option<String>,
    pub samples: Vec<String>,
}

impl HistoryCheck {
    pub fn passed(&self) -> bool {
        self.violations == 0 && self.unknown == 0 && self.skipped.is_none()
    }
}

impl Default for HistoryLog {
    fn default() -> Self {
        HistoryLog::new()
    }
}

impl HistoryLog {
    pub fn new() -> HistoryLog {
        HistoryLog {
            origin: Instant::now(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            recorded: Default::default(),
        }
    }

    fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_nanos() as u64
    }

    fn push(&self, r: Recorded) {
        use std::sync::atomic::Ordering;
        if self.recorded.fetch_add(1, Ordering::Relaxed) < MAX_HISTORY_OPS {
            self.shards[r.key as usize % SHARDS].lock().unwrap().push(r);
        }
    }

    /// A write of `version` sent at `sent`; `done` is `None` when its outcome
    /// is unknown.
    pub fn write(&self, key: u64, version: u64, sent: Instant, done: Option<Instant>) {
        let ret = done.map_or(u64::MAX, |d| self.nanos(d));
        self.push(Recorded { key, call: self.nanos(sent), ret, is_write: true, value: version });
    }

    /// A write whose sending was not seen (its client stopped mid-request):
    /// pending since the run began, which only ever accepts more.
    pub fn write_unseen(&self, key: u64, version: u64) {
        self.push(Recorded { key, call: 0, ret: u64::MAX, is_write: true, value: version });
    }

    /// A read sent at `sent` that returned `observed` at `done`.
    pub fn read(&self, key: u64, observed: Observed, sent: Instant, done: Instant) {
        let value = match observed {
            Observed::Missing => 0,
            Observed::Version(v) => v,
            Observed::Foreign => FOREIGN,
        };
        self.push(Recorded { key, call: self.nanos(sent), ret: self.nanos(done), is_write: false, value });
    }

    /// Operations recorded so far.
    pub fn len(&self) -> usize {
        self.recorded.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks the whole history; `name` turns a key number into its name
    /// for the report.
    pub fn check(&self, name: impl Fn(u64) -> String) -> HistoryCheck {
        let recorded = self.recorded.load(std::sync::atomic::Ordering::Relaxed);
        if recorded > MAX_HISTORY_OPS {
            return HistoryCheck {
                ops: recorded as u64,
                skipped: Some(format!("{recorded} operations exceed the {MAX_HISTORY_OPS} a run records")),
                ..HistoryCheck::default()
            };
        }
        let mut by_key: BTreeMap<u64, Vec<Op<u64>>> = BTreeMap::new();
        let mut foreign_start: BTreeSet<u64> = BTreeSet::new();
        for shard in &self.shards {
            for r in shard.lock().unwrap().iter() {
                let value = (r.value != 0).then_some(r.value);
                let ret = (r.ret != u64::MAX).then_some(r.ret);
                let action = if r.is_write { Action::Write(value) } else { Action::Read(value) };
                if !r.is_write && r.value == FOREIGN {
                    foreign_start.insert(r.key);
                }
                by_key.entry(r.key).or_default().push(Op { call: r.call, ret, action });
            }
        }
        // A key some read found holding another run's value started with it:
        // the run's writers never write FOREIGN, so a write of it at time 0
        // that returned at once sets the starting value.
        for key in foreign_start {
            if let Some(ops) = by_key.get_mut(&key) {
                ops.push(Op::write(0, Some(0), Some(FOREIGN)));
            }
        }
        let report = check_history(by_key, DEFAULT_STEP_BUDGET);
        let samples = report
            .violations
            .iter()
            .take(SAMPLE_LIMIT)
            .map(|(key, v)| {
                format!(
                    "{}: {} of {} operations linearize; nothing explains {:?} (overlapping: {:?})",
                    name(*key),
                    v.linearized,
                    v.ops,
                    v.stuck,
                    v.context
                )
            })
            .collect();
        HistoryCheck {
            ops: report.ops,
            keys: report.keys,
            pending_writes: report.pending_writes,
            violations: report.violations.len() as u64,
            unknown: report.unknown.len() as u64,
            skipped: None,
            samples,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(log: &HistoryLog, ms: u64) -> Instant {
        log.origin + Duration::from_millis(ms)
    }

    #[test]
    fn a_stale_read_in_a_recorded_history_is_found() {
        let log = HistoryLog::new();
        log.write(1, 1, at(&log, 0), Some(at(&log, 1)));
        log.write(1, 2, at(&log, 2), Some(at(&log, 3)));
        log.read(1, Observed::Version(1), at(&log, 4), at(&log, 5));
        // Another key is fine: a pending write that landed.
        log.write(2, 1, at(&log, 0), None);
        log.read(2, Observed::Version(1), at(&log, 4), at(&log, 5));
        let check = log.check(|k| format!("k{k}"));
        assert_eq!((check.ops, check.keys, check.pending_writes, check.violations), (5, 2, 1, 1));
        assert!(check.samples[0].starts_with("k1: 2 of 3 operations linearize"), "{:?}", check.samples);
        assert!(!check.passed());
    }

    #[test]
    fn values_from_before_the_run_are_a_starting_state() {
        let log = HistoryLog::new();
        log.read(3, Observed::Foreign, at(&log, 0), at(&log, 1));
        log.write(3, 1, at(&log, 2), Some(at(&log, 3)));
        log.read(3, Observed::Version(1), at(&log, 4), at(&log, 5));
        assert!(log.check(|k| k.to_string()).passed());
        // But the old value cannot come back once overwritten.
        log.read(3, Observed::Foreign, at(&log, 6), at(&log, 7));
        assert_eq!(log.check(|k| k.to_string()).violations, 1);
    }
}
