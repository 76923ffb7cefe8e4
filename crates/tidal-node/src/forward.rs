//! Requests a router sends to the node leading a PRG, and the answers.
//! They travel as app frames of the PRG's group on the peer transport,
//! stamped with the routing epoch the sender used.

use serde::{Deserialize, Serialize};
use tidal_core::kv::{BlockOp, ReadOp, Reply, WriteOp};
use tidal_core::ownership::{MoveId, SlotCommand};
use tidal_core::{NodeId, PrgId};
use tidal_raft::kv_entry::{Outcome, Row};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum KvRequest {
    Write(WriteOp),
    Read(ReadOp),
    /// Writes of one PRG from one client connection, in the order the
    /// client sent them: proposed together in one log entry, so they apply
    /// in that order and commit or fail together. The reply is an array of
    /// their replies, in the same order.
    WriteBatch(Vec<WriteOp>),
    /// A move's change of slot ownership, proposed by the PRG's leader.
    Slots(SlotCommand),
    /// Source: up to `max_bytes` of the rows `move_id` exports, after the
    /// stored key `after`.
    Export {
        move_id: MoveId,
        after: Option<Vec<u8>>,
        max_bytes: u64,
    },
    /// Source: the rows of `move_id` changed after log index `after`.
    Delta {
        move_id: MoveId,
        after: u64,
    },
    /// Target: copy a chunk of `move_id`'s rows from `source` into this PRG.
    Pull {
        move_id: MoveId,
        source: PrgId,
        after: Option<Vec<u8>>,
        max_bytes: u64,
    },
    /// Target: pull `move_id`'s changes after `after` from `source` into this PRG.
    PullDelta {
        move_id: MoveId,
        source: PrgId,
        after: u64,
    },
    /// Hand the PRG's leadership to node `to`.
    TransferLeader {
        to: NodeId,
    },
    /// A replica move's change of the PRG's membership.
    Members(tidal_control::MemberChange),
    /// A blocked client's round (BLPOP and kin, XREAD BLOCK): run `op`
    /// once one of the keys it waits on holds something, waiting up to
    /// `wait_ms` for a write to one of them. Nil when nothing came.
    Block {
        op: BlockOp,
        wait_ms: u64,
        /// When the client first blocked (the node's clock in ms, then
        /// the node's order within the millisecond): older clients are
        /// served first.
        since: u64,
        /// The command's first round: a key of another type answers its
        /// error; in later rounds it is waited out, as Redis does.
        first: bool,
        /// Names the blocked command for [`KvRequest::Unblock`].
        token: u64,
    },
    /// The client of the blocked command `token` left: its round at this
    /// leader, if any, ends without popping.
    Unblock {
        token: u64,
    },
    /// A script (EVAL), run at the leader of its keys' PRG.
    Script(crate::script::ScriptCall),
    /// A follower's read (READONLY): the leader confirms it leads, as for
    /// a read of its own, and answers with its read index; the follower
    /// serves the read once it has applied that far.
    ReadIndex,
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
    /// A key's slot is in a hand-off: retry shortly.
    Fenced,
    /// Replies of a batch, some of which may have been refused (and not
    /// applied) because their slots moved.
    Batch(Vec<Outcome>),
    /// A move's step applied at this log index.
    Applied(u64),
    /// A move's step was refused; retrying will not help.
    Refused(String),
    /// Rows for a move, current as of the source's log index `at`.
    Rows {
        rows: Vec<Row>,
        done: bool,
        at: u64,
    },
    /// The source cannot say what changed since the copy began.
    Lost(String),
    /// A script that names no keys touched `key` first, whose slot
    /// another PRG serves: it runs there instead (nothing was proposed).
    ScriptElsewhere {
        key: Vec<u8>,
    },
    /// Who leads the PRG now (after a leader transfer).
    Leader(Option<NodeId>),
    /// A chunk copied into the target.
    Pulled {
        rows: u64,
        bytes: u64,
        last: Option<Vec<u8>>,
        done: bool,
        at: u64,
    },
    /// The request may have been proposed but its outcome is unknown
    /// (leadership changed while it was in flight).
    Ambiguous(String),
    Unavailable(String),
    /// How far a learner has come: entries behind, bytes sent to it.
    Learner {
        lag: u64,
        bytes: u64,
    },
    /// The leader's read index, for [`KvRequest::ReadIndex`].
    ReadIndex(u64),
}

/// The request an app frame for a PRG carries, as a peer sent it.
pub fn decode_request(body: &[u8]) -> Result<KvRequest, postcard::Error> {
    tidal_raft::types::decode(body)
}

impl KvRequest {
    pub fn keys(&self) -> Vec<&[u8]> {
        match self {
            KvRequest::Write(op) => op.keys(),
            KvRequest::Read(op) => op.keys(),
            KvRequest::WriteBatch(ops) => ops.iter().flat_map(WriteOp::keys).collect(),
            KvRequest::Block { op, .. } => op.keys(),
            KvRequest::Script(call) => call.keys(),
            _ => Vec::new(),
        }
    }

    /// Whether the router may send this again after an ambiguous failure
    /// (a timeout, a lost connection, a leader change while it was in
    /// flight). Reads may: they change nothing. Move steps and leadership
    /// and membership changes may: each is idempotent and the move's
    /// journal orders them. No client write may, not even a plain SET:
    /// if the first try was applied and another client wrote the key
    /// since, the second try would apply the old value again, after a
    /// write that was acknowledged later, and a reader would see the key
    /// go back. The client gets an error that says the outcome is unknown.
    pub fn retry_safe(&self) -> bool {
        !matches!(self, KvRequest::Write(_) | KvRequest::WriteBatch(_) | KvRequest::Block { .. })
            && !matches!(self, KvRequest::Script(call) if !call.read_only())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidal_core::kv::{Expiry, SetCond};

    fn set(cond: SetCond, get: bool) -> KvRequest {
        KvRequest::Write(WriteOp::Set { key: b"k".to_vec(), value: b"v".to_vec(), expiry: Expiry::RelMs(5), cond, get })
    }

    #[test]
    fn no_client_write_is_retried_after_an_ambiguous_failure() {
        assert!(KvRequest::Read(ReadOp::Get { key: b"k".to_vec() }).retry_safe());
        assert!(KvRequest::TransferLeader { to: 2 }.retry_safe());
        // A plain SET applied twice can undo a later write by another client.
        assert!(!set(SetCond::None, false).retry_safe());
        assert!(!KvRequest::Write(WriteOp::MSet { pairs: vec![(b"a".to_vec(), b"1".to_vec())] }).retry_safe());
        assert!(!set(SetCond::Nx, false).retry_safe());
        assert!(!KvRequest::Write(WriteOp::IncrBy { key: b"n".to_vec(), delta: 1 }).retry_safe());
        assert!(!KvRequest::Write(WriteOp::Flush).retry_safe());
        let op = match set(SetCond::None, false) {
            KvRequest::Write(op) => op,
            _ => unreachable!(),
        };
        assert!(!KvRequest::WriteBatch(vec![op.clone(), op.clone()]).retry_safe());
        assert_eq!(KvRequest::WriteBatch(vec![op.clone(), op]).keys(), vec![b"k".as_slice(), b"k".as_slice()]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Whatever a peer sends for a PRG: a request or an error.
        #[test]
        fn arbitrary_bodies_are_a_request_or_an_error(body in proptest::collection::vec(0..=255u8, 0..256)) {
            if let Ok(req) = decode_request(&body) {
                // What decodes encodes again to something that decodes the same.
                let again = tidal_raft::types::encode(&req);
                proptest::prop_assert!(decode_request(&again).is_ok());
            }
        }
    }
}
