//! Batching of client writes into log entries, one batcher per PRG leader.
//!
//! Every log entry costs each replica an append, a share of an fsync, a
//! replication message and an apply, so one entry per client write would
//! multiply that work by the number of writes. The batcher keeps one
//! proposal in flight per group and gathers everything that arrives
//! meanwhile into the next one:
//!
//! ```text
//!  writes ─> queue ─> [w1]            propose, wait for commit + apply
//!                     [w2 w3 w4 w5]   next entry, proposed when w1 is done
//! ```
//!
//! Under load an entry carries many writes, and the node-wide storage writer
//! then folds the entries of many groups into one fsync.
//!
//! A caller may also submit several writes at once ([`KvProposer::propose_many`],
//! a client's pipelined writes to one PRG): they go into one entry, in
//! order, so they commit or fail together and apply one after another.

use tokio::sync::{mpsc, oneshot};

use tidal_core::kv::WriteOp;

use crate::kv_entry::{encode_batch, encode_entry, ControlOutcome, KvEntry, Outcome};
use crate::types::{decode, Proposal, Raft};

/// Most writes in one entry.
pub const MAX_BATCH_OPS: usize = 512;
/// Most value bytes in one entry (a single larger write goes alone), at
/// most: a node whose requests are smaller (its peer frames are) batches
/// at most one request's worth, so that every entry fits a frame.
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// Why a batched write has no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// This node does not lead the group, or is handing its leadership
    /// over: nothing was appended, so the write may be sent again
    /// (to the leader named, when one is).
    #[error("not the leader (the leader is {0:?}); nothing was proposed")]
    NotLeader(Option<u64>),
    /// The entry may or may not commit (leadership changed, the group
    /// stopped): the caller cannot know whether the write took effect.
    #[error("{0}")]
    Ambiguous(String),
}

struct Pending {
    ops: Vec<WriteOp>,
    size: usize,
    reply: oneshot::Sender<Result<Vec<Outcome>, ProposeError>>,
}

/// Handle to one group's batcher; dropping every handle stops it.
#[derive(Clone)]
pub struct KvProposer {
    tx: mpsc::UnboundedSender<Pending>,
    raft: Raft,
    now_ms: std::sync::Arc<dyn Fn() -> u64 + Send + Sync>,
}

impl KvProposer {
    /// Start the batcher of `raft`; `now_ms` stamps each entry, which
    /// carries at most `max_bytes` of writes (see [`op_size`]; at most
    /// [`MAX_BATCH_BYTES`]) unless one write alone is larger.
    pub fn spawn(raft: Raft, now_ms: impl Fn() -> u64 + Send + Sync + 'static, max_bytes: usize) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let now_ms: std::sync::Arc<dyn Fn() -> u64 + Send + Sync> = std::sync::Arc::new(now_ms);
        let clock = now_ms.clone();
        tokio::spawn(run(raft.clone(), move || clock(), rx, max_bytes));
        Self { tx, raft, now_ms }
    }

    /// Propose a move's entry (a slot command or copied rows) on its own,
    /// outside the batches of client writes, and wait until it applied.
    pub async fn propose_control(&self, entry: &KvEntry) -> Result<ControlOutcome, ProposeError> {
        let p = Proposal { now_ms: (self.now_ms)(), body: encode_entry(entry) };
        match self.raft.client_write(p).await {
            Ok(r) => decode::<ControlOutcome>(&r.data)
                .map_err(|e| ProposeError::Ambiguous(format!("undecodable reply: {e}"))),
            Err(e) => Err(propose_failed(e)),
        }
    }

    /// Propose `op` in the next entry and wait for its reply.
    pub async fn propose(&self, op: WriteOp) -> Result<Outcome, ProposeError> {
        let mut replies = self.propose_many(vec![op]).await?;
        replies.pop().ok_or_else(|| ProposeError::Ambiguous("no reply for the write".into()))
    }

    /// Propose `ops` together in the next entry, in this order, and wait
    /// for their replies (in the same order).
    pub async fn propose_many(&self, ops: Vec<WriteOp>) -> Result<Vec<Outcome>, ProposeError> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let size = ops.iter().map(op_size).sum();
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Pending { ops, size, reply })
            .map_err(|_| ProposeError::Ambiguous("the group's proposer stopped".into()))?;
        rx.await.map_err(|_| ProposeError::Ambiguous("the group's proposer stopped".into()))?
    }
}

/// What a failed `client_write` means for the writes it carried. openraft
/// answers `ForwardToLeader` only for a proposal it refused before
/// appending anything (this node does not lead, or is transferring its
/// leadership); every other failure, a discarded entry above all, leaves
/// the outcome unknown.
fn propose_failed(
    e: openraft::errors::RaftError<
        crate::types::TypeConfig,
        openraft::errors::ClientWriteError<crate::types::TypeConfig>,
    >,
) -> ProposeError {
    use openraft::errors::{ClientWriteError, RaftError};
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => ProposeError::NotLeader(f.leader_id),
        RaftError::APIError(ClientWriteError::LogEntryDiscarded(f)) => ProposeError::Ambiguous(format!(
            "the entry was discarded when leadership moved to {:?}; it may still commit",
            f.leader_id
        )),
        e => ProposeError::Ambiguous(e.to_string()),
    }
}

/// The bytes `op` adds to an entry, as the batcher counts them: its keys
/// and values for the common writes (counted without encoding them), its
/// encoded size for the others.
pub fn op_size(op: &WriteOp) -> usize {
    use tidal_core::kv::{HashWrite, ListWrite, SetWrite, ZSetWrite};
    match op {
        WriteOp::Set { key, value, .. } | WriteOp::Append { key, value } | WriteOp::SetRange { key, value, .. } => {
            key.len() + value.len()
        }
        WriteOp::MSet { pairs } | WriteOp::MSetNx { pairs } => pairs.iter().map(|(k, v)| k.len() + v.len()).sum(),
        WriteOp::Restore { key, record } => key.len() + record.as_ref().map_or(0, |r| r.value.len()),
        WriteOp::RestorePayload { key, load, .. } => key.len() + load.as_ref().map_or(0, |r| r.value.size()),
        WriteOp::Hash { key, op: HashWrite::Set { pairs, .. } } => {
            key.len() + pairs.iter().map(|(f, v)| f.len() + v.len()).sum::<usize>()
        }
        WriteOp::ZSet { key, op: ZSetWrite::Add { pairs, .. } } => {
            key.len() + pairs.iter().map(|(_, m)| 8 + m.len()).sum::<usize>()
        }
        WriteOp::List { key, op: ListWrite::Push { values, .. } } => {
            key.len() + values.iter().map(Vec::len).sum::<usize>()
        }
        WriteOp::Members { key, op: SetWrite::Add { members } | SetWrite::Rem { members } } => {
            key.len() + members.iter().map(Vec::len).sum::<usize>()
        }
        WriteOp::Exec { ops, .. } => ops
            .iter()
            .map(|op| match op {
                tidal_core::kv::TxOp::Write(w) => op_size(w),
                tidal_core::kv::TxOp::Read(r) => encoded_size(r),
            })
            .sum(),
        // Whatever else a write carries (HSETNX's value, DEL's keys) counts
        // too, or a batch of them could outgrow a peer frame.
        _ => encoded_size(op),
    }
}

fn encoded_size(v: &impl serde::Serialize) -> usize {
    postcard::experimental::serialized_size(v).unwrap_or(64)
}

async fn run(
    raft: Raft,
    now_ms: impl Fn() -> u64 + Send + 'static,
    mut rx: mpsc::UnboundedReceiver<Pending>,
    max_bytes: usize,
) {
    let mut carry: Option<Pending> = None;
    loop {
        let first = match carry.take() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let mut bytes = first.size;
        let mut count = first.ops.len();
        let mut batch = vec![first];
        while count < MAX_BATCH_OPS {
            match rx.try_recv() {
                Ok(p) if bytes + p.size > max_bytes || count + p.ops.len() > MAX_BATCH_OPS => {
                    carry = Some(p);
                    break;
                }
                Ok(p) => {
                    bytes += p.size;
                    count += p.ops.len();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        // Writers that gave up waiting need no entry.
        batch.retain(|p| !p.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let mut ops: Vec<WriteOp> = Vec::with_capacity(count);
        let mut replies = Vec::with_capacity(batch.len());
        for p in batch {
            replies.push((p.ops.len(), p.reply));
            ops.extend(p.ops);
        }
        let outcome = match raft.client_write(Proposal { now_ms: now_ms(), body: encode_batch(&ops) }).await {
            Ok(r) => match decode::<Vec<Outcome>>(&r.data) {
                Ok(rs) if rs.len() == ops.len() => Ok(rs),
                Ok(rs) => Err(ProposeError::Ambiguous(format!("{} replies for {} writes", rs.len(), ops.len()))),
                Err(e) => Err(ProposeError::Ambiguous(format!("undecodable replies: {e}"))),
            },
            Err(e) => Err(propose_failed(e)),
        };
        match outcome {
            Ok(rs) => {
                let mut rs = rs.into_iter();
                for (n, tx) in replies {
                    let _ = tx.send(Ok(rs.by_ref().take(n).collect()));
                }
            }
            Err(e) => {
                for (_, tx) in replies {
                    let _ = tx.send(Err(e.clone()));
                }
            }
        }
    }
}
