//! Which entries a group's log may drop.
//!
//! Entries covered by a snapshot are kept for `keep_after_snapshot` entries
//! behind it, and for no more than `keep_bytes` of them (the log's bytes
//! are sampled once a look, [`LogGc::mark`]), and dropped after that: a
//! count alone would keep gigabytes of a slot move's MiB-sized entries. On a leader a peer that is catching up
//! holds them longer: a new learner taking a snapshot, or a follower back
//! from an outage, needs the entries from its snapshot on. If they were
//! dropped while it received the snapshot (under a steady write load that
//! takes seconds), the leader would have to send it a newer snapshot, and
//! again after that one, and a large replica would never catch up.
//!
//! A peer holds the log at the last entry it has (from 0 while it has none)
//! for as long as it makes progress: its match moves up or the leader sends
//! it bytes (snapshot pieces or entries). A peer that stops for the hold
//! time ([`HOLD`] unless configured) no longer holds anything, so one that
//! is down does not keep the log growing; when it comes back it is sent a
//! snapshot, and holds the log again while it takes it. One back sooner
//! catches up from the log, which costs less than a snapshot.
//!
//! A group also snapshots once its log has grown by so many bytes
//! ([`ByteTrigger`]), besides openraft's own count of entries: an entry is
//! a few hundred bytes of client writes or a MiB of a slot move's rows, so
//! a count alone lets a log of large entries grow to gigabytes, and its
//! purge come in one burst.
//!
//! The decisions are plain data in, an answer out ([`LogGc::purge_upto`],
//! [`ByteTrigger::due`]); the task that applies them to a running group is
//! [`run`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use tokio::time::Instant;

use crate::transport::SentBytes;
use crate::types::Raft;

/// How long a peer that makes no progress still holds the log, unless
/// configured (`--log-hold-ms`).
pub const HOLD: Duration = Duration::from_secs(120);

/// How often a running group looks at what it may drop.
const EVERY: Duration = Duration::from_secs(1);

/// What a peer had at the last look, and when it last made progress.
#[derive(Clone, Copy, Debug)]
struct Seen {
    matched: Option<u64>,
    sent: u64,
    progressed: Instant,
}

/// Most samples of the log's size a group keeps (one a look: an hour's).
const MARKS: usize = 3600;

/// The log-retention decision of one group.
#[derive(Debug)]
pub struct LogGc {
    keep: u64,
    /// Most bytes kept behind the snapshot (0: no bound by bytes).
    keep_bytes: u64,
    hold: Duration,
    peers: BTreeMap<u64, Seen>,
    /// (last index of the log, bytes it had taken by then), by index.
    marks: VecDeque<(u64, u64)>,
}

impl LogGc {
    pub fn new(keep_after_snapshot: u64, keep_bytes: u64, hold: Duration) -> Self {
        Self { keep: keep_after_snapshot, keep_bytes, hold, peers: BTreeMap::new(), marks: VecDeque::new() }
    }

    /// Notes that the log ended at `last` when it had taken `appended`
    /// bytes. A log that ends lower than before (a follower's conflicting
    /// entries truncated) is noted once it passes its old end again.
    pub fn mark(&mut self, last: Option<u64>, appended: u64) {
        let Some(last) = last else { return };
        if self.marks.back().is_some_and(|&(i, _)| i >= last) {
            return;
        }
        if self.marks.len() == MARKS {
            self.marks.pop_front();
        }
        self.marks.push_back((last, appended));
    }

    /// The last index behind `snapshot` with at least `keep_bytes` of log
    /// between it and the snapshot, by the marks (so never less than that).
    fn bytes_bound(&mut self, snapshot: u64) -> Option<u64> {
        if self.keep_bytes == 0 {
            return None;
        }
        let at_snapshot = self.marks.iter().take_while(|&&(i, _)| i <= snapshot).last()?.1;
        let limit = at_snapshot.checked_sub(self.keep_bytes)?;
        let n = self.marks.iter().take_while(|&&(i, b)| i <= snapshot && b <= limit).count();
        // Later bounds only grow: the marks before this one are done with.
        self.marks.drain(..n.checked_sub(1)?);
        self.marks.front().map(|&(i, _)| i)
    }

    /// The last index the log may drop now, or `None` for nothing.
    /// `snapshot` is the last index the group's snapshot covers. On a
    /// leader `peers` maps each other member to the last index it is known
    /// to have and to the bytes sent to it so far; elsewhere it is `None`.
    pub fn purge_upto(
        &mut self,
        now: Instant,
        snapshot: Option<u64>,
        peers: Option<&BTreeMap<u64, (Option<u64>, u64)>>,
    ) -> Option<u64> {
        let snapshot = snapshot?;
        let mut upto = snapshot.checked_sub(self.keep).max(self.bytes_bound(snapshot))?;
        let Some(peers) = peers else {
            self.peers.clear();
            return Some(upto);
        };
        self.peers.retain(|id, _| peers.contains_key(id));
        for (&id, &(matched, sent)) in peers {
            let seen = self.peers.entry(id).or_insert(Seen { matched, sent, progressed: now });
            if matched > seen.matched || sent > seen.sent {
                *seen = Seen { matched, sent, progressed: now };
            }
            if now.duration_since(seen.progressed) < self.hold {
                upto = upto.min(matched.unwrap_or(0));
            }
        }
        Some(upto)
    }
}

/// When a group snapshots for its log's bytes.
#[derive(Debug)]
pub struct ByteTrigger {
    every: u64,
    /// Bytes appended when the latest snapshot was seen or asked for.
    base: u64,
    snapshot: Option<u64>,
}

impl ByteTrigger {
    /// Snapshot after `every` bytes (0: never for bytes).
    pub fn new(every: u64) -> Self {
        Self { every, base: 0, snapshot: None }
    }

    /// Whether to ask for a snapshot now: `appended` is the bytes the log
    /// has taken so far, `snapshot` the last index the group's latest
    /// snapshot covers. A snapshot taken for any reason starts the count
    /// again, and so does asking for one.
    pub fn due(&mut self, appended: u64, snapshot: Option<u64>) -> bool {
        if snapshot != self.snapshot {
            self.snapshot = snapshot;
            self.base = appended;
            return false;
        }
        if self.every == 0 || appended.saturating_sub(self.base) < self.every {
            return false;
        }
        self.base = appended;
        true
    }
}

/// How a group's log is kept.
#[derive(Clone, Copy, Debug)]
pub struct LogPolicy {
    /// Entries kept behind the latest snapshot.
    pub keep_after_snapshot: u64,
    /// How long a peer that makes no progress holds a leader's log.
    pub hold: Duration,
    /// Snapshot after the log has taken this many bytes, and keep no more
    /// than this many behind the snapshot (0: neither, by bytes).
    pub snapshot_bytes: u64,
}

/// Apply the decisions to `raft` every second until the group stops:
/// `appended` counts the bytes its log has taken.
pub async fn run(raft: Raft, sent: Arc<SentBytes>, appended: Arc<AtomicU64>, policy: LogPolicy) {
    let mut gc = LogGc::new(policy.keep_after_snapshot, policy.snapshot_bytes, policy.hold);
    let mut bytes = ByteTrigger::new(policy.snapshot_bytes);
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (snapshot, purged, peers, last) = {
            let m = raft.metrics().borrow_watched().clone();
            if m.running_state.is_err() {
                return;
            }
            let peers = m.replication.as_ref().map(|r| {
                r.iter()
                    .filter(|(id, _)| **id != m.id)
                    .map(|(id, l)| (*id, (l.as_ref().map(|l| l.index), sent.to(*id))))
                    .collect::<BTreeMap<_, _>>()
            });
            (m.snapshot.map(|l| l.index), m.purged.map(|l| l.index), peers, m.last_log_index)
        };
        let taken = appended.load(Ordering::Relaxed);
        gc.mark(last, taken);
        if bytes.due(taken, snapshot) && raft.trigger().snapshot().await.is_err() {
            return;
        }
        let Some(upto) = gc.purge_upto(Instant::now(), snapshot, peers.as_ref()) else { continue };
        if purged.is_some_and(|p| upto <= p) {
            continue;
        }
        if raft.trigger().purge_log(upto).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(list: &[(u64, Option<u64>, u64)]) -> BTreeMap<u64, (Option<u64>, u64)> {
        list.iter().map(|&(id, m, s)| (id, (m, s))).collect()
    }

    #[test]
    fn a_follower_drops_what_the_snapshot_covers_less_what_it_keeps() {
        let mut gc = LogGc::new(100, 0, HOLD);
        let now = Instant::now();
        assert_eq!(gc.purge_upto(now, None, None), None);
        assert_eq!(gc.purge_upto(now, Some(50), None), None);
        assert_eq!(gc.purge_upto(now, Some(1000), None), Some(900));
    }

    #[test]
    fn up_to_date_peers_do_not_hold_the_log() {
        let mut gc = LogGc::new(100, 0, HOLD);
        let now = Instant::now();
        let p = peers(&[(2, Some(1200), 0), (3, Some(1190), 0)]);
        assert_eq!(gc.purge_upto(now, Some(1000), Some(&p)), Some(900));
    }

    #[test]
    fn a_learner_taking_a_snapshot_holds_the_log_while_bytes_reach_it() {
        let mut gc = LogGc::new(100, 0, Duration::from_secs(10));
        let t0 = Instant::now();
        let mut sent = 0;
        // A new learner has nothing yet; the leader keeps sending it pieces.
        for s in 0..30u64 {
            sent += 4 << 20;
            let p = peers(&[(2, Some(5000 + s * 100), 0), (4, None, sent)]);
            let now = t0 + Duration::from_secs(s);
            assert_eq!(gc.purge_upto(now, Some(4000 + s * 100), Some(&p)), Some(0), "second {s}");
        }
        // Installed at index 6000: it holds from there while it catches up.
        let p = peers(&[(2, Some(8000), 0), (4, Some(6000), sent)]);
        assert_eq!(gc.purge_upto(t0 + Duration::from_secs(31), Some(7000), Some(&p)), Some(6000));
        let p = peers(&[(2, Some(8100), 0), (4, Some(8090), sent)]);
        assert_eq!(gc.purge_upto(t0 + Duration::from_secs(32), Some(7000), Some(&p)), Some(6900));
    }

    #[test]
    fn a_peer_that_stops_holds_the_log_only_for_a_while() {
        let mut gc = LogGc::new(100, 0, Duration::from_secs(10));
        let t0 = Instant::now();
        let p = peers(&[(2, Some(5000), 0), (3, Some(1000), 0)]);
        assert_eq!(gc.purge_upto(t0, Some(4000), Some(&p)), Some(1000));
        assert_eq!(gc.purge_upto(t0 + Duration::from_secs(9), Some(4000), Some(&p)), Some(1000));
        assert_eq!(gc.purge_upto(t0 + Duration::from_secs(10), Some(4000), Some(&p)), Some(3900));
        // It comes back and is sent a snapshot: it holds again.
        let p = peers(&[(2, Some(5000), 0), (3, Some(1000), 4096)]);
        assert_eq!(gc.purge_upto(t0 + Duration::from_secs(11), Some(4000), Some(&p)), Some(1000));
    }

    #[test]
    fn large_entries_are_kept_behind_the_snapshot_only_up_to_the_byte_bound() {
        // Keep 5 000 entries, but no more than 100 MiB of them.
        const MIB: u64 = 1 << 20;
        let mut gc = LogGc::new(5_000, 100 * MIB, HOLD);
        let now = Instant::now();
        // Small entries: the count decides (10 000 entries, 10 MiB).
        for s in 0..=10u64 {
            gc.mark(Some(s * 1_000), s * MIB);
        }
        assert_eq!(gc.purge_upto(now, Some(10_000), None), Some(5_000));
        // Then a slot move's 1 MiB entries, a second's worth per mark.
        for s in 1..=5u64 {
            gc.mark(Some(10_000 + s * 50), (10 + s * 50) * MIB);
        }
        // A snapshot between marks counts from the mark before it: at
        // 10 240, from 10 200's 210 MiB, so the log up to 110 MiB goes.
        assert_eq!(gc.purge_upto(now, Some(10_240), None), Some(10_100));
        // Snapshot at 10 250 (260 MiB): 100 MiB back is 160 MiB, which the
        // log had passed by index 10 150; no mark is dropped past it.
        assert_eq!(gc.purge_upto(now, Some(10_250), None), Some(10_150));
        assert_eq!(gc.purge_upto(now, Some(10_250), None), Some(10_150));
        // A peer catching up still holds the log.
        let p = peers(&[(2, Some(10_020), 0)]);
        assert_eq!(gc.purge_upto(now, Some(10_250), Some(&p)), Some(10_020));
        // A log that ends lower (entries truncated) is not marked again
        // until it passes its old end.
        gc.mark(Some(10_200), 300 * MIB);
        assert_eq!(gc.marks.back(), Some(&(10_250, 260 * MIB)));
        // 0: no bound by bytes.
        let mut count_only = LogGc::new(5_000, 0, HOLD);
        count_only.mark(Some(10_000), 10_000 * MIB);
        assert_eq!(count_only.purge_upto(now, Some(10_000), None), Some(5_000));
    }

    #[test]
    fn a_log_snapshots_after_so_many_bytes_counted_from_the_latest_snapshot() {
        let mut t = ByteTrigger::new(100);
        assert!(!t.due(0, None));
        assert!(!t.due(99, None));
        assert!(t.due(100, None));
        // Asked: not again until another 100 bytes.
        assert!(!t.due(150, None));
        assert!(t.due(200, None));
        // A snapshot (for entries, or the one asked for) restarts the count.
        assert!(!t.due(260, Some(7)));
        assert!(!t.due(359, Some(7)));
        assert!(t.due(360, Some(7)));
        assert!(!t.due(1000, Some(9)));
        // 0: never for bytes.
        let mut never = ByteTrigger::new(0);
        assert!(!never.due(u64::MAX, None));
    }

    #[test]
    fn a_removed_peer_is_forgotten() {
        let mut gc = LogGc::new(100, 0, HOLD);
        let now = Instant::now();
        let p = peers(&[(2, Some(5000), 0), (3, None, 10)]);
        assert_eq!(gc.purge_upto(now, Some(4000), Some(&p)), Some(0));
        let p = peers(&[(2, Some(5000), 0)]);
        assert_eq!(gc.purge_upto(now, Some(4000), Some(&p)), Some(3900));
        assert!(!gc.peers.contains_key(&3));
    }
}
