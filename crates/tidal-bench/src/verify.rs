//! The verifier: a client-side oracle for acknowledged writes.
//!
//! Every write carries a stamp `tv:<run>:<key>:<version>:` with a version
//! that grows per key. Only one write per key is in flight at a time (a
//! writer that finds its key busy picks another), so a key's versions are
//! totally ordered by the client, whatever node or connection carries them.
//!
//! ```text
//!   begin_write ──► version v ──► SET ──► ack ──► acked = max(acked, v)
//!                                     └─► error/timeout ──► v is "ambiguous"
//!   begin_read  ──► floor = acked ──► GET ──► judge(floor, observed)
//! ```
//!
//! A read (during the run, or the final read-back) must observe a version at
//! least `floor`, the highest version acknowledged before the read began.
//! Anything older is a stale read (or, at the end, a lost write), unless the
//! older version belongs to an ambiguous write: a write whose outcome the
//! client never learned may take effect at any time after it was sent. A
//! version above every attempt is a phantom (a value nobody wrote).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::history::{HistoryCheck, HistoryLog};

/// Most keys a verified run may track (24 bytes of client memory each).
pub const MAX_VERIFY_KEYS: u64 = 50_000_000;
/// How many anomalies a report lists one by one.
const SAMPLE_LIMIT: usize = 50;

#[derive(Default)]
struct KeyState {
    busy: AtomicBool,
    /// The highest version handed to a writer.
    attempted: AtomicU64,
    /// The highest acknowledged version.
    acked: AtomicU64,
}

/// What a read returned, decoded from the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    Missing,
    Version(u64),
    /// A value without this run's stamp for this key (left by another run,
    /// or not written by the verifier at all).
    Foreign,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AnomalyKind {
    /// The final read-back found an acknowledged write missing or overwritten
    /// by an older value.
    Lost,
    /// A read during the run returned a value older than one already
    /// acknowledged when the read began.
    Stale,
    /// A read returned a version that was never written.
    Phantom,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    pub key: String,
    /// The highest version acknowledged before the read began.
    pub expected_at_least: u64,
    /// The version read; `None` when the key was missing or foreign.
    pub observed: Option<u64>,
}

/// Counts and samples for the summary.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct VerifyReport {
    pub acked_writes: u64,
    pub ambiguous_writes: u64,
    pub reads_checked: u64,
    pub keys_checked: u64,
    /// Keys the final read-back could not read (the cluster kept failing).
    pub unverified: u64,
    /// Errors the final read-back met, including ones a retry got past.
    pub readback_errors: std::collections::BTreeMap<String, u64>,
    pub lost: u64,
    pub stale: u64,
    pub phantom: u64,
    pub samples: Vec<Anomaly>,
    /// The linearizability check of every recorded operation.
    pub history: Option<HistoryCheck>,
}

impl VerifyReport {
    /// True when nothing was lost, stale, phantom or left unverified, and the
    /// recorded history (once checked) is linearizable.
    pub fn passed(&self) -> bool {
        self.lost == 0
            && self.stale == 0
            && self.phantom == 0
            && self.unverified == 0
            && self.history.as_ref().is_none_or(HistoryCheck::passed)
    }
}

/// The shared oracle of one run; every client holds it behind an `Arc`.
pub struct Verifier {
    run: u32,
    prefix: String,
    keys: Vec<KeyState>,
    /// Versions of writes whose outcome is unknown, per key (rare).
    ambiguous: Mutex<HashMap<u64, Vec<u64>>>,
    report: Mutex<VerifyReport>,
    /// Every operation with its interval, for the linearizability check.
    history: HistoryLog,
}

impl Verifier {
    pub fn new(run: u32, prefix: &str, keys: u64) -> Verifier {
        assert!(keys <= MAX_VERIFY_KEYS, "the spec bounds verified keys");
        Verifier {
            run,
            prefix: prefix.to_string(),
            keys: (0..keys).map(|_| KeyState::default()).collect(),
            ambiguous: Mutex::default(),
            report: Mutex::default(),
            history: HistoryLog::new(),
        }
    }

    pub fn key_count(&self) -> u64 {
        self.keys.len() as u64
    }

    /// Claims `key` for one write and returns its version, or `None` when
    /// another write to the key is in flight.
    pub fn begin_write(&self, key: u64) -> Option<u64> {
        let k = &self.keys[key as usize];
        k.busy.compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed).ok()?;
        Some(k.attempted.fetch_add(1, Ordering::AcqRel) + 1)
    }

    /// Records a write's outcome and releases the key.
    pub fn end_write(&self, key: u64, version: u64, acked: bool) {
        let k = &self.keys[key as usize];
        if acked {
            k.acked.fetch_max(version, Ordering::AcqRel);
            self.report.lock().unwrap().acked_writes += 1;
        } else {
            self.ambiguous.lock().unwrap().entry(key).or_default().push(version);
            self.report.lock().unwrap().ambiguous_writes += 1;
        }
        k.busy.store(false, Ordering::Release);
    }

    /// Marks writes still claimed (their client was stopped mid-request)
    /// as having an unknown outcome.
    pub fn settle_unfinished(&self) {
        for (key, k) in self.keys.iter().enumerate() {
            if k.busy.swap(false, Ordering::AcqRel) {
                let version = k.attempted.load(Ordering::Acquire);
                self.history.write_unseen(key as u64, version);
                self.ambiguous.lock().unwrap().entry(key as u64).or_default().push(version);
                self.report.lock().unwrap().ambiguous_writes += 1;
            }
        }
    }

    /// The floor a read of `key` that starts now must reach.
    pub fn begin_read(&self, key: u64) -> u64 {
        self.keys[key as usize].acked.load(Ordering::Acquire)
    }

    /// Judges a read during the run. Returns the anomaly, if any (it is
    /// also counted in the report).
    pub fn end_read(&self, key: u64, floor: u64, observed: Observed) -> Option<Anomaly> {
        self.report.lock().unwrap().reads_checked += 1;
        self.judge(key, floor, observed, AnomalyKind::Stale)
    }

    /// Keys the final read-back must check: every key written at least once.
    pub fn written_keys(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.key_count()).filter(|&k| self.keys[k as usize].attempted.load(Ordering::Acquire) > 0)
    }

    /// Judges the final read-back of `key`, after all writers stopped.
    pub fn final_check(&self, key: u64, observed: Observed) -> Option<Anomaly> {
        self.report.lock().unwrap().keys_checked += 1;
        let floor = self.begin_read(key);
        self.judge(key, floor, observed, AnomalyKind::Lost)
    }

    /// Counts the keys the final read-back could not read, and its errors.
    pub fn unverified(&self, keys: u64, errors: std::collections::BTreeMap<String, u64>) {
        let mut report = self.report.lock().unwrap();
        report.unverified += keys;
        report.readback_errors = errors;
    }

    fn judge(&self, key: u64, floor: u64, observed: Observed, too_old: AnomalyKind) -> Option<Anomaly> {
        let attempted = self.keys[key as usize].attempted.load(Ordering::Acquire);
        let (kind, seen) = match observed {
            Observed::Version(v) if v > attempted => (AnomalyKind::Phantom, Some(v)),
            Observed::Version(v) if v >= floor => return None,
            Observed::Version(v) if self.was_ambiguous(key, v) => return None,
            Observed::Version(v) => (too_old, Some(v)),
            Observed::Missing | Observed::Foreign if floor == 0 => return None,
            Observed::Missing | Observed::Foreign => (too_old, None),
        };
        let anomaly = Anomaly { kind, key: self.key_name(key), expected_at_least: floor, observed: seen };
        let mut report = self.report.lock().unwrap();
        match kind {
            AnomalyKind::Lost => report.lost += 1,
            AnomalyKind::Stale => report.stale += 1,
            AnomalyKind::Phantom => report.phantom += 1,
        }
        if report.samples.len() < SAMPLE_LIMIT {
            report.samples.push(anomaly.clone());
        }
        Some(anomaly)
    }

    fn was_ambiguous(&self, key: u64, version: u64) -> bool {
        self.ambiguous.lock().unwrap().get(&key).is_some_and(|v| v.contains(&version))
    }

    pub fn report(&self) -> VerifyReport {
        self.report.lock().unwrap().clone()
    }

    pub fn history(&self) -> &HistoryLog {
        &self.history
    }

    /// Runs the linearizability check over the recorded history and adds
    /// its findings to the report. Call once, after the final read-back.
    pub fn check_history(&self) {
        let check = self.history.check(|key| self.key_name(key));
        self.report.lock().unwrap().history = Some(check);
    }

    pub fn key_name(&self, key: u64) -> String {
        crate::workload::key_name(&self.prefix, key)
    }

    /// The value for a write: the stamp, padded to `size` bytes.
    pub fn stamp(&self, key: u64, version: u64, size: usize) -> Vec<u8> {
        let mut v = format!("tv:{:08x}:{key}:{version}:", self.run).into_bytes();
        if v.len() < size {
            v.resize(size, b'.');
        }
        v
    }

    /// Decodes a value read back for `key`.
    pub fn observe(&self, key: u64, value: Option<&[u8]>) -> Observed {
        let Some(value) = value else { return Observed::Missing };
        let parse = || -> Option<u64> {
            let text = std::str::from_utf8(value.get(..value.len().min(64))?).ok()?;
            let mut parts = text.split(':');
            (parts.next()? == "tv").then_some(())?;
            (u32::from_str_radix(parts.next()?, 16).ok()? == self.run).then_some(())?;
            (parts.next()?.parse::<u64>().ok()? == key).then_some(())?;
            parts.next()?.parse().ok()
        };
        parse().map_or(Observed::Foreign, Observed::Version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(v: &Verifier, key: u64, acked: bool) -> u64 {
        let version = v.begin_write(key).expect("key is free");
        v.end_write(key, version, acked);
        version
    }

    /// A history with one lost write and one stale read: the verifier
    /// finds both, and nothing else.
    #[test]
    fn finds_a_lost_write_and_a_stale_read() {
        let v = Verifier::new(7, "k:", 4);
        // Key 0: two acknowledged writes, then a read that sees the first.
        let v1 = write(&v, 0, true);
        let v2 = write(&v, 0, true);
        let floor = v.begin_read(0);
        assert_eq!(floor, v2);
        let stale = v.end_read(0, floor, Observed::Version(v1)).expect("stale read");
        assert_eq!((stale.kind, stale.observed, stale.expected_at_least), (AnomalyKind::Stale, Some(v1), v2));
        // Key 1: an acknowledged write that the read-back does not find.
        write(&v, 1, true);
        let lost = v.final_check(1, Observed::Missing).expect("lost write");
        assert_eq!((lost.kind, lost.key.as_str()), (AnomalyKind::Lost, "k:0000000001"));
        // Key 0 read back at its latest version is fine.
        assert_eq!(v.final_check(0, Observed::Version(v2)), None);
        let r = v.report();
        assert_eq!((r.lost, r.stale, r.phantom, r.acked_writes, r.keys_checked), (1, 1, 0, 3, 2));
        assert!(!r.passed());
    }

    #[test]
    fn ambiguous_writes_may_land_or_not() {
        let v = Verifier::new(7, "k:", 2);
        let v1 = write(&v, 0, true);
        let v2 = write(&v, 0, false);
        // The unknown write may have taken effect, or not.
        assert_eq!(v.final_check(0, Observed::Version(v1)), None);
        assert_eq!(v.final_check(0, Observed::Version(v2)), None);
        // An ambiguous write that lands after a later acknowledged one is
        // still a legal outcome: its request was never answered.
        let v3 = write(&v, 0, true);
        assert!(v3 > v2);
        assert_eq!(v.final_check(0, Observed::Version(v2)), None);
        // But an older acknowledged version after a newer ack is a loss.
        assert_eq!(v.final_check(0, Observed::Version(v1)).unwrap().kind, AnomalyKind::Lost);
        // Key 1 only saw failed writes: missing is fine.
        write(&v, 1, false);
        assert_eq!(v.final_check(1, Observed::Missing), None);
        assert_eq!(v.report().ambiguous_writes, 2);
    }

    #[test]
    fn phantoms_and_foreign_values() {
        let v = Verifier::new(7, "k:", 2);
        assert_eq!(v.end_read(0, 0, Observed::Missing), None);
        assert_eq!(v.end_read(0, 0, Observed::Foreign), None);
        assert_eq!(v.end_read(0, 0, Observed::Version(3)).unwrap().kind, AnomalyKind::Phantom);
        write(&v, 1, true);
        assert_eq!(v.final_check(1, Observed::Foreign).unwrap().kind, AnomalyKind::Lost);
    }

    #[test]
    fn one_writer_per_key() {
        let v = Verifier::new(1, "k:", 1);
        let first = v.begin_write(0).unwrap();
        assert_eq!(v.begin_write(0), None);
        v.end_write(0, first, true);
        assert_eq!(v.begin_write(0), Some(first + 1));
        assert_eq!(v.written_keys().collect::<Vec<_>>(), vec![0]);
    }

    #[test]
    fn stamps_round_trip() {
        let v = Verifier::new(0xabc, "k:", 100);
        let value = v.stamp(42, 9, 100);
        assert_eq!(value.len(), 100);
        assert_eq!(v.observe(42, Some(&value)), Observed::Version(9));
        assert_eq!(v.observe(41, Some(&value)), Observed::Foreign);
        assert_eq!(Verifier::new(0xabd, "k:", 100).observe(42, Some(&value)), Observed::Foreign);
        assert_eq!(v.observe(42, Some(b"hello")), Observed::Foreign);
        assert_eq!(v.observe(42, None), Observed::Missing);
        // A stamp longer than the value size is kept whole.
        assert!(v.stamp(42, u64::MAX, 10).len() > 10);
    }
}
