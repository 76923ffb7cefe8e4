//! Requests a router sends to the node leading a PRG, and the answers.
//! They travel as app frames of the PRG's group on the peer transport,
//! stamped with the routing epoch the sender used.

use serde::{Deserialize, Serialize};
use tidal_core::kv::{ReadOp, Reply, WriteOp};
use tidal_core::NodeId;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum KvRequest {
    Write(WriteOp),
    Read(ReadOp),
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum KvResponse {
    Reply(Reply),
    /// This node does not lead the PRG; nothing was proposed.
    NotLeader {
        leader: Option<NodeId>,
    },
    /// The sender routed with an epoch older than this replica's placement.
    StaleEpoch {
        current: u64,
    },
    /// A key is owned by another PRG at `epoch`.
    Moved {
        epoch: u64,
    },
    /// The request may have been proposed but its outcome is unknown
    /// (leadership changed while it was in flight).
    Ambiguous(String),
    Unavailable(String),
}

impl KvRequest {
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            KvRequest::Write(op) => op.keys(),
            KvRequest::Read(op) => op.keys(),
        }
    }

    /// Applying this twice leaves the same data and the same reply (a
    /// relative TTL restarts, which clients cannot tell from a slow write),
    /// so an ambiguous failure may be retried.
    pub fn retry_safe(&self) -> bool {
        use tidal_core::kv::SetCond;
        match self {
            KvRequest::Read(_) => true,
            KvRequest::Write(op) => matches!(
                op,
                WriteOp::Set { cond: SetCond::None, get: false, .. }
                    | WriteOp::MSet { .. }
                    | WriteOp::Flush
                    | WriteOp::Restore { .. }
            ),
        }
    }
}
