//! Batching of linearizable-read confirmations, one gate per PRG leader.
//!
//! A linearizable read needs a read index confirmed by a quorum *after* the
//! read arrived (`ensure_linearizable`: a heartbeat round). Reads that arrive
//! while a round is in flight wait for the next round, so one round serves
//! every read queued behind it:
//!
//! ```text
//!  reads ─> queue ─> [r1]          round 1 (quorum heartbeat, wait applied)
//!                    [r2 r3 r4]    round 2, started after r2..r4 arrived
//! ```
//!
//! The first round of each leader term also waits until everything in the
//! leader's log at that point has applied. openraft's read index is the
//! later of the commit index and the leader's first entry of its term; a
//! leader restored at startup (its vote survived a restart) keeps its term
//! and its old first entry, and its commit index is only the hint persisted
//! before the crash, so without this a read right after a restart could miss
//! writes acknowledged before it. Every committed entry is in the leader's
//! log, so once that log has applied the ordinary read index suffices.

use openraft::async_runtime::WatchReceiver;
use openraft::errors::{LinearizableReadError, RaftError};
use tokio::sync::{mpsc, oneshot};

use crate::types::Raft;

/// Why a read could not be confirmed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// This node is not the leader; the known leader, if any.
    #[error("not the leader")]
    NotLeader(Option<u64>),
    #[error("{0}")]
    Unavailable(String),
}

/// Handle to one group's gate; dropping every handle stops it.
#[derive(Clone)]
pub struct ReadGate {
    tx: mpsc::UnboundedSender<oneshot::Sender<Result<(), ReadError>>>,
}

impl ReadGate {
    pub fn spawn(raft: Raft) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, rx));
        Self { tx }
    }

    /// Wait until this replica's state machine reflects every write
    /// committed before this call, as confirmed by a quorum.
    pub async fn confirm(&self) -> Result<(), ReadError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(tx).map_err(|_| ReadError::Unavailable("the group's read gate stopped".into()))?;
        rx.await.map_err(|_| ReadError::Unavailable("the group's read gate stopped".into()))?
    }
}

/// Longest wait for a new term's leader to apply its log before reads.
const TERM_BARRIER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

async fn run(raft: Raft, mut rx: mpsc::UnboundedReceiver<oneshot::Sender<Result<(), ReadError>>>) {
    // The leader term whose log has been applied up to where it stood
    // when this node first served reads in that term.
    let mut settled_term: Option<u64> = None;
    while let Some(first) = rx.recv().await {
        let mut waiting = vec![first];
        while let Ok(w) = rx.try_recv() {
            waiting.push(w);
        }
        waiting.retain(|w| !w.is_closed());
        if waiting.is_empty() {
            continue;
        }
        // The round starts after every waiting read arrived.
        let outcome = match raft.ensure_linearizable(openraft::ReadPolicy::ReadIndex).await {
            Ok(_) => settle_term(&raft, &mut settled_term).await,
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f))) => {
                Err(ReadError::NotLeader(f.leader_id))
            }
            Err(e) => Err(ReadError::Unavailable(e.to_string())),
        };
        for w in waiting {
            let _ = w.send(outcome.clone());
        }
    }
}

/// On the first confirmed round of a term, wait until this leader has
/// applied its whole log as it stands now (see the module docs).
async fn settle_term(raft: &Raft, settled_term: &mut Option<u64>) -> Result<(), ReadError> {
    let (term, last_log) = {
        let m = raft.metrics();
        let m = m.borrow_watched();
        (m.current_term, m.last_log_index)
    };
    if *settled_term == Some(term) {
        return Ok(());
    }
    raft.wait(Some(TERM_BARRIER_WAIT))
        .applied_index_at_least(last_log, "the new term's leader applies its log before serving reads")
        .await
        .map_err(|e| ReadError::Unavailable(e.to_string()))?;
    *settled_term = Some(term);
    Ok(())
}
