//! Linearizable reads on a PRG leader: one gate per group, which confirms
//! leadership for every read waiting on it at once, then lets each batch
//! wait only for the entries committed before it arrived to apply.
//!
//! ```text
//!  reads ─> queue ─> [r1 r2 r3] ─ confirm ─┬─ applied ≥ read index? answer
//!                    [r4 r5]    ─ confirm ─┤   else wait for apply (a task
//!                                          │   of its own; the next batch
//!                                          │   does not wait behind it)
//! ```
//!
//! Leadership is confirmed one of two ways ([`ReadPolicy`]):
//!
//! - **Lease** (the default). The leader serves the read locally while a
//!   quorum acknowledged one of its heartbeats or appends sent less than
//!   the *read lease* ago. Followers refuse to elect anyone for the
//!   election timeout (its maximum) after they last heard from the leader,
//!   counted from when the message arrived, which is after the leader sent
//!   it; the read lease is that timeout less a margin for the clocks'
//!   rates differing. So while the lease holds, no other leader can exist.
//!   When the newest quorum acknowledgement is older than the lease, the
//!   read falls back to a heartbeat round, as a read-index read.
//! - **Read index.** Every batch waits for a heartbeat round that a quorum
//!   answers after the reads arrived.
//!
//! Time is the monotonic clock, which keeps running while a process is
//! stopped (SIGSTOP, a stalled VM), so a leader that wakes from a pause
//! finds its lease expired. It does not run while the machine sleeps
//! (suspend to RAM), which the wall clock does: the gate samples the wall
//! clock's lead over the monotonic one around every lease check, and when
//! it grew (the machine slept, or the wall clock was stepped forward) that
//! batch, and every one until a round confirms, takes a read-index round.
//!
//! The first round of each leader term also waits until everything in the
//! leader's log at that point has applied. openraft's read index is the
//! later of the commit index and the leader's first entry of its term; a
//! leader restored at startup (its vote survived a restart) keeps its term
//! and its old first entry, and its commit index is only the hint persisted
//! before the crash, so without this a read right after a restart could miss
//! writes acknowledged before it. Every committed entry is in the leader's
//! log, so once that log has applied the ordinary read index suffices.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::errors::{LinearizableReadError, RaftError};
use openraft::LinearizerOption;
use tokio::sync::{mpsc, oneshot};

use crate::types::Raft;

/// How a leader confirms it still leads before serving a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadPolicy {
    /// Serve locally while the leader's lease holds (see the module docs).
    #[default]
    Lease,
    /// A quorum heartbeat round for every batch of reads.
    ReadIndex,
}

impl FromStr for ReadPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "lease" => Ok(ReadPolicy::Lease),
            "read-index" => Ok(ReadPolicy::ReadIndex),
            _ => Err(format!("expected lease or read-index, got '{s}'")),
        }
    }
}

impl std::fmt::Display for ReadPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReadPolicy::Lease => "lease",
            ReadPolicy::ReadIndex => "read-index",
        })
    }
}

/// Why a read could not be confirmed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// This node is not the leader; the known leader, if any.
    #[error("not the leader")]
    NotLeader(Option<u64>),
    #[error("{0}")]
    Unavailable(String),
}

/// How the batches of one gate, or of every gate of a node, were
/// confirmed.
#[derive(Debug, Default)]
pub struct ReadStats {
    /// Batches checked against the leader's lease (one whose newest
    /// quorum acknowledgement is too old waits for a heartbeat round).
    pub lease: AtomicU64,
    /// Batches confirmed by a heartbeat round under the read-index
    /// policy, or after a clock jump.
    pub round: AtomicU64,
    /// Batches that took a round because the machine slept or the wall
    /// clock jumped ahead around the lease check.
    pub clock_jump: AtomicU64,
}

/// The clocks a gate reads: the wall clock, in ms, which the gate compares
/// with the runtime's monotonic clock to see the machine sleep.
pub type WallClock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// What a gate needs besides its group.
#[derive(Clone)]
pub struct GateConfig {
    pub policy: ReadPolicy,
    /// How long a quorum acknowledgement lets the leader serve reads.
    pub lease: Duration,
    pub wall: WallClock,
    pub stats: Arc<ReadStats>,
}

/// A jump of the wall clock ahead of the monotonic one larger than this
/// is taken as the machine having slept.
const CLOCK_JUMP: Duration = Duration::from_millis(20);

/// A read waiting on the gate: answered with the read index, once this
/// replica has applied that far (`apply`) or at once (a follower's read,
/// which waits for its own replica instead).
struct Waiter {
    tx: oneshot::Sender<Result<u64, ReadError>>,
    apply: bool,
}

/// Handle to one group's gate; dropping every handle stops it.
#[derive(Clone)]
pub struct ReadGate {
    tx: mpsc::UnboundedSender<Waiter>,
}

impl ReadGate {
    pub fn spawn(raft: Raft, config: GateConfig) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, config, rx));
        Self { tx }
    }

    /// Wait until this replica's state machine reflects every write
    /// committed before this call, with this node's leadership confirmed
    /// after it.
    pub async fn confirm(&self) -> Result<(), ReadError> {
        self.wait(true).await.map(drop)
    }

    /// The index a replica must have applied to serve a read that arrived
    /// before this call, with this node's leadership confirmed after it.
    pub async fn index(&self) -> Result<u64, ReadError> {
        self.wait(false).await
    }

    async fn wait(&self, apply: bool) -> Result<u64, ReadError> {
        let (tx, rx) = oneshot::channel();
        let stopped = || ReadError::Unavailable("the group's read gate stopped".into());
        self.tx.send(Waiter { tx, apply }).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

/// Longest wait for a new term's leader to apply its log before reads.
const TERM_BARRIER_WAIT: Duration = Duration::from_secs(10);

/// The wall clock's lead over the monotonic one, in ms; it grows by the
/// time the machine slept.
struct Drift {
    wall: WallClock,
    origin: tokio::time::Instant,
    last: Option<i128>,
}

impl Drift {
    fn sample(&self) -> i128 {
        i128::from((self.wall)()) - self.origin.elapsed().as_millis() as i128
    }

    /// Whether the lead grew past [`CLOCK_JUMP`] since the last call.
    fn jumped(&mut self) -> bool {
        let now = self.sample();
        let jumped = self.last.is_some_and(|last| now - last > CLOCK_JUMP.as_millis() as i128);
        self.last = Some(now);
        jumped
    }
}

/// The next batch on `rx`: every request waiting on it now, once one
/// does, less those whose caller `left`; `None` once every sender is gone.
pub async fn next_batch<T>(rx: &mut mpsc::UnboundedReceiver<T>, left: impl Fn(&T) -> bool) -> Option<Vec<T>> {
    let mut batch = vec![rx.recv().await?];
    while let Ok(w) = rx.try_recv() {
        batch.push(w);
    }
    batch.retain(|w| !left(w));
    Some(batch)
}

async fn run(raft: Raft, config: GateConfig, mut rx: mpsc::UnboundedReceiver<Waiter>) {
    // The leader term whose log has been applied up to where it stood
    // when this node first served reads in that term.
    let mut settled_term: Option<u64> = None;
    let mut drift = Drift { wall: config.wall.clone(), origin: tokio::time::Instant::now(), last: None };
    // A clock jump was seen and no round has confirmed since.
    let mut distrust = false;
    while let Some(waiting) = next_batch(&mut rx, |w| w.tx.is_closed()).await {
        if waiting.is_empty() {
            continue;
        }
        distrust |= drift.jumped();
        let lease = config.policy == ReadPolicy::Lease && !distrust;
        // The check starts after every waiting read arrived.
        let mut confirmed = linearizer(&raft, lease.then_some(config.lease)).await;
        if lease && drift.jumped() {
            // The machine may have slept between the samples, around the
            // lease check: confirm with a round instead.
            config.stats.clock_jump.fetch_add(1, Ordering::Relaxed);
            confirmed = linearizer(&raft, None).await;
            distrust = confirmed.is_err();
        } else if lease {
            config.stats.lease.fetch_add(1, Ordering::Relaxed);
        } else {
            config.stats.round.fetch_add(1, Ordering::Relaxed);
            distrust &= confirmed.is_err();
        }
        let confirmed = match confirmed {
            Ok(l) => settle_term(&raft, &mut settled_term).await.map(|settled| (l, settled)),
            Err(e) => Err(e),
        };
        let (l, settled) = match confirmed {
            Ok(c) => c,
            Err(e) => {
                answer(waiting, Err(e));
                continue;
            }
        };
        // A follower's read waits for its own replica to apply this far:
        // past the term's settled log too, which the linearizer, taken
        // before the settling, may not cover.
        let index = l.read_log_id().index().max(settled);
        let (local, remote): (Vec<Waiter>, Vec<Waiter>) = waiting.into_iter().partition(|w| w.apply);
        answer(remote, Ok(index));
        if local.is_empty() {
            continue;
        }
        if l.applied().map(|a| a.index) >= Some(l.read_log_id().index()) {
            answer(local, Ok(index));
        } else {
            let raft = raft.clone();
            tokio::spawn(async move {
                let applied = l.await_ready(&raft).await.map(|_| index);
                answer(local, applied.map_err(|e| ReadError::Unavailable(e.to_string())));
            });
        }
    }
}

fn answer(waiting: Vec<Waiter>, outcome: Result<u64, ReadError>) {
    for w in waiting {
        let _ = w.tx.send(outcome.clone());
    }
}

/// The read index, with leadership confirmed under `lease` (a quorum
/// acknowledgement younger than it, or a heartbeat round when there is
/// none), or by a heartbeat round when `lease` is `None`.
async fn linearizer(
    raft: &Raft,
    lease: Option<Duration>,
) -> Result<openraft::raft::linearizable_read::Linearizer<crate::types::TypeConfig>, ReadError> {
    let option = match lease {
        Some(age) => LinearizerOption::new(Some(age), true),
        None => openraft::ReadPolicy::ReadIndex.into(),
    };
    match raft.get_read_linearizer(option).await {
        Ok(l) => Ok(l),
        Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f))) => Err(ReadError::NotLeader(f.leader_id)),
        Err(e) => Err(ReadError::Unavailable(e.to_string())),
    }
}

/// On the first confirmed round of a term, wait until this leader has
/// applied its whole log as it stands now (see the module docs); the
/// index it waited for, or 0 when the term was settled before.
async fn settle_term(raft: &Raft, settled_term: &mut Option<u64>) -> Result<u64, ReadError> {
    let (term, last_log) = {
        let m = raft.metrics();
        let m = m.borrow_watched();
        (m.current_term, m.last_log_index)
    };
    if *settled_term == Some(term) {
        return Ok(0);
    }
    raft.wait(Some(TERM_BARRIER_WAIT))
        .applied_index_at_least(last_log, "the new term's leader applies its log before serving reads")
        .await
        .map_err(|e| ReadError::Unavailable(e.to_string()))?;
    *settled_term = Some(term);
    Ok(last_log.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_wall_clock_that_runs_ahead_of_the_monotonic_one_is_a_jump() {
        let wall_ms = Arc::new(AtomicU64::new(1_000_000));
        let w = wall_ms.clone();
        let mut drift =
            Drift { wall: Arc::new(move || w.load(Ordering::SeqCst)), origin: tokio::time::Instant::now(), last: None };
        assert!(!drift.jumped(), "the first sample has nothing to compare with");
        // Both clocks run together: no jump, however long.
        tokio::time::advance(Duration::from_secs(30)).await;
        wall_ms.fetch_add(30_000, Ordering::SeqCst);
        assert!(!drift.jumped());
        // The machine slept 5 s: the wall clock ran, the monotonic did not.
        wall_ms.fetch_add(5_000, Ordering::SeqCst);
        assert!(drift.jumped());
        assert!(!drift.jumped(), "a jump is seen once");
        // Small steps (NTP slewing) and a wall clock set back are not.
        wall_ms.fetch_add(CLOCK_JUMP.as_millis() as u64 - 1, Ordering::SeqCst);
        assert!(!drift.jumped());
        wall_ms.fetch_sub(60_000, Ordering::SeqCst);
        assert!(!drift.jumped());
    }

    #[test]
    fn policies_parse_and_print_as_the_flag_spells_them() {
        for p in [ReadPolicy::Lease, ReadPolicy::ReadIndex] {
            assert_eq!(p.to_string().parse::<ReadPolicy>(), Ok(p));
        }
        assert!("leases".parse::<ReadPolicy>().is_err());
    }
}
