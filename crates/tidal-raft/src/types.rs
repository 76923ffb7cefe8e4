//! The openraft type configuration shared by every group a node hosts.
//!
//! Groups do not know what their entries mean: a [`Proposal`] carries opaque
//! bytes that the group's [`Machine`](crate::Machine) decodes, plus the
//! leader's clock reading so that time-dependent commands (TTLs) apply
//! identically on every replica.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

/// One entry's application payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Unix milliseconds on the proposing leader.
    pub now_ms: u64,
    /// Encoded by the group's machine; opaque here.
    pub body: Vec<u8>,
}

openraft::declare_raft_types!(
    /// Type configuration for every tidal Raft group.
    pub TypeConfig:
        D = Proposal,
        R = Vec<u8>,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<u64>;
pub type Vote = openraft::Vote<u64>;
pub type StorageError = openraft::StorageError<u64>;
pub type StoredMembership = openraft::StoredMembership<u64, openraft::BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<u64, openraft::BasicNode>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;

/// The encoding of everything tidal stores or sends between nodes
/// (postcard): one place, so every layer agrees.
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).expect("in-memory serialization cannot fail")
}

pub fn decode<'a, T: Deserialize<'a>>(b: &'a [u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(b)
}

/// A storage error for openraft from anything displayable.
pub(crate) fn io_write(e: impl std::fmt::Display) -> StorageError {
    openraft::StorageIOError::write(openraft::AnyError::error(e.to_string())).into()
}

pub(crate) fn io_read(e: impl std::fmt::Display) -> StorageError {
    openraft::StorageIOError::read(openraft::AnyError::error(e.to_string())).into()
}
