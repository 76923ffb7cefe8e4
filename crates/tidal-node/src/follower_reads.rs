//! Reads served by a follower (Redis Cluster's `READONLY`), still
//! linearizable: one per PRG replica, it asks the PRG's leader for its
//! read index once for every read waiting on it, then lets them read this
//! replica once it has applied that far.
//!
//! ```text
//!  reads ─> queue ─> [r1 r2 r3] ─ ReadIndex ─> leader (confirms it leads,
//!                                 after the reads arrived: lease or round)
//!                       <─ index i ─┘
//!           this replica applied ≥ i? ─> read here (a task of its own, so
//!                                        the next batch is not held)
//! ```
//!
//! The leader's read index covers every write committed before the reads
//! arrived, and a replica that has applied it reflects them all, so the
//! read may take effect at any instant between the confirmation and its
//! answer. A read whose slot this replica's applied state says has moved
//! is sent on to the leaders, as any read.

use std::sync::Weak;
use std::time::Duration;

use tidal_core::kv::Reply;
use tidal_core::PrgId;
use tidal_raft::read_gate::next_batch;
use tokio::sync::{mpsc, oneshot};

use crate::forward::KvRequest;
use crate::node::Shared;

type Waiter = oneshot::Sender<Result<(), String>>;

/// Longest a follower read waits for its replica to apply the read index
/// before it goes to the leader instead: a healthy follower applies within
/// a heartbeat of the leader; one catching up, or leaving the group, may
/// not for a long time.
const APPLY_WAIT: Duration = Duration::from_secs(1);

/// Handle to one replica's queue of follower reads.
#[derive(Clone)]
pub struct FollowerReads {
    tx: mpsc::UnboundedSender<Waiter>,
}

impl FollowerReads {
    pub fn spawn(shared: Weak<Shared>, prg: PrgId, raft: tidal_raft::Raft) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(shared, prg, raft, rx));
        Self { tx }
    }

    /// Wait until this replica reflects every write committed before this
    /// call; why not, when it cannot.
    pub async fn confirm(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        let stopped = || "the replica's follower reads stopped".to_string();
        self.tx.send(tx).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

async fn run(shared: Weak<Shared>, prg: PrgId, raft: tidal_raft::Raft, mut rx: mpsc::UnboundedReceiver<Waiter>) {
    while let Some(waiting) = next_batch(&mut rx, Waiter::is_closed).await {
        if waiting.is_empty() {
            continue;
        }
        let Some(s) = shared.upgrade() else { return };
        let index = match s.send(&prg, KvRequest::ReadIndex).await {
            Reply::Int(i) => u64::try_from(i).map_err(|_| format!("read index {i}")),
            Reply::Error(e) => Err(e),
            other => Err(format!("unexpected answer to a read index: {other:?}")),
        };
        drop(s);
        let index = match index {
            Ok(i) => i,
            Err(e) => {
                answer(waiting, Err(e));
                continue;
            }
        };
        let raft = raft.clone();
        tokio::spawn(async move {
            let applied = raft
                .wait(Some(APPLY_WAIT))
                .applied_index_at_least(Some(index), "a follower read waits for its replica to apply")
                .await;
            answer(waiting, applied.map(drop).map_err(|e| e.to_string()));
        });
    }
}

fn answer(waiting: Vec<Waiter>, outcome: Result<(), String>) {
    for w in waiting {
        let _ = w.send(outcome.clone());
    }
}
