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

async fn run(raft: Raft, mut rx: mpsc::UnboundedReceiver<oneshot::Sender<Result<(), ReadError>>>) {
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
        let outcome = match raft.ensure_linearizable().await {
            Ok(_) => Ok(()),
            Err(openraft::error::RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(f))) => {
                Err(ReadError::NotLeader(f.leader_id))
            }
            Err(e) => Err(ReadError::Unavailable(e.to_string())),
        };
        for w in waiting {
            let _ = w.send(outcome.clone());
        }
    }
}
