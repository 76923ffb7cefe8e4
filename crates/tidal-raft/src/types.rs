//! The openraft type configuration shared by every group a node hosts.
//!
//! Groups do not know what their entries mean: a [`Proposal`] carries opaque
//! bytes that the group's [`Machine`](crate::Machine) decodes, plus the
//! leader's clock reading so that time-dependent commands (TTLs) apply
//! identically on every replica.

use std::io::Cursor;

use openraft::type_config::alias;
use serde::{Deserialize, Serialize};

/// One entry's application payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Unix milliseconds on the proposing leader.
    pub now_ms: u64,
    /// Encoded by the group's machine; opaque here.
    pub body: Vec<u8>,
}

impl std::fmt::Display for Proposal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "proposal of {} bytes at {} ms", self.body.len(), self.now_ms)
    }
}

openraft::declare_raft_types!(
    /// Type configuration for every tidal Raft group.
    pub TypeConfig:
        D = Proposal,
        R = Vec<u8>,
        NodeId = u64,
        Node = openraft::BasicNode,
);

pub type Raft = openraft::Raft<TypeConfig, crate::state_machine::GroupStateMachine>;
pub type Entry = alias::EntryOf<TypeConfig>;
pub type LogId = alias::LogIdOf<TypeConfig>;
pub type Vote = alias::VoteOf<TypeConfig>;
/// The term and node of the leader that proposed an entry.
pub type CommittedLeaderId = alias::CommittedLeaderIdOf<TypeConfig>;
pub type StoredMembership = alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = alias::SnapshotMetaOf<TypeConfig>;
/// A snapshot's payload as it is built, sent and installed: the machine's export.
pub type SnapshotData = Cursor<Vec<u8>>;
pub type Snapshot = alias::SnapshotOf<TypeConfig, SnapshotData>;
/// openraft's storage error, for what reports one (the storage test suite).
pub type StorageError = openraft::StorageError<TypeConfig>;

/// The encoding of everything tidal stores or sends between nodes
/// (postcard): one place, so every layer agrees.
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).expect("in-memory serialization cannot fail")
}

pub fn decode<'a, T: Deserialize<'a>>(b: &'a [u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(b)
}

/// An I/O error for openraft from anything displayable.
pub(crate) fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}
