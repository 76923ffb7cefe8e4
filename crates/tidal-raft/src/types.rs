//! The openraft type configuration shared by every group a node hosts.
//!
//! Groups do not know what their entries mean: a [`Proposal`] carries opaque
//! bytes that the group's [`Machine`](crate::Machine) decodes, plus the
//! leader's clock reading so that time-dependent commands (TTLs) apply
//! identically on every replica.

use openraft::type_config::alias;
use serde::{Deserialize, Serialize};

/// One entry's application payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Unix milliseconds on the proposing leader.
    pub now_ms: u64,
    /// Encoded by the group's machine; opaque here.
    #[serde(with = "serde_bytes")]
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
        AsyncRuntime = crate::runtime::TidalRuntime,
);

pub type Raft = openraft::Raft<TypeConfig, crate::state_machine::GroupStateMachine>;
pub type Entry = alias::EntryOf<TypeConfig>;
pub type LogId = alias::LogIdOf<TypeConfig>;
pub type Vote = alias::VoteOf<TypeConfig>;
/// The term and node of the leader that proposed an entry.
pub type CommittedLeaderId = alias::CommittedLeaderIdOf<TypeConfig>;
pub type StoredMembership = alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = alias::SnapshotMetaOf<TypeConfig>;
pub use crate::snapshot::SnapshotData;
pub type Snapshot = alias::SnapshotOf<TypeConfig, SnapshotData>;
/// openraft's storage error, for what reports one (the storage test suite).
pub type StorageError = openraft::StorageError<TypeConfig>;

/// The encoding of everything tidal stores or sends between nodes
/// (postcard): one place, so every layer agrees.
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).expect("in-memory serialization cannot fail")
}

/// Reading is bounded by `b`, whoever wrote it: postcard takes a byte
/// string or a string as a slice of `b`, so a length prefix claiming more
/// than is left fails instead of allocating; a sequence is built element
/// by element as they decode, serde reserving at most 1 MiB up front. So
/// what a decode allocates grows with `b`, not with the lengths it claims.
pub fn decode<'a, T: Deserialize<'a>>(b: &'a [u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(b)
}

/// The first bytes of a versioned record (an entry body, a persisted
/// state). A postcard value never starts with them: `0xFF` opens a varint
/// that continues, and a continuation byte of `0x00` would make it
/// non-minimal, which postcard never writes. So records from before
/// versioning (version 0) are told apart from versioned ones.
const VERSIONED: [u8; 2] = [0xFF, 0x00];

/// `v` encoded with its format `version` in front.
pub fn encode_versioned<T: Serialize>(version: u8, v: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&VERSIONED);
    out.push(version);
    postcard::to_extend(v, out).expect("in-memory serialization cannot fail")
}

/// The format version of a record and its payload: version 0 is a record
/// written before formats were versioned, whose payload is all of `b`.
pub fn split_version(b: &[u8]) -> (u8, &[u8]) {
    match b {
        [0xFF, 0x00, version, rest @ ..] => (*version, rest),
        _ => (0, b),
    }
}

/// An I/O error for openraft from anything displayable.
pub(crate) fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Byte fields are written as one run of bytes rather than as a
    /// sequence of numbers; postcard lays both out the same, so logs and
    /// records written either way read the same.
    #[test]
    fn byte_fields_encode_as_a_plain_sequence_did() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Plain {
            now_ms: u64,
            body: Vec<u8>,
        }
        let body: Vec<u8> = (0..=255u8).chain(0..=255).collect();
        let p = Proposal { now_ms: 1_700_000_000_000, body: body.clone() };
        let plain = Plain { now_ms: p.now_ms, body };
        assert_eq!(encode(&p), encode(&plain));
        let back: Proposal = decode(&encode(&plain)).unwrap();
        assert_eq!(back, p);
    }

    /// Length prefixes larger than the input fail rather than reserve
    /// what they claim (reserving 2^60 elements would abort the process).
    #[test]
    fn lengths_claiming_more_than_the_input_fail() {
        let claims_2_60 = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10, 1, 2];
        assert_eq!(decode::<Vec<u8>>(&claims_2_60), Err(postcard::Error::DeserializeUnexpectedEnd));
        assert_eq!(decode::<String>(&claims_2_60), Err(postcard::Error::DeserializeUnexpectedEnd));
        assert!(decode::<Vec<u64>>(&claims_2_60).is_err());
        assert!(decode::<Vec<Vec<u8>>>(&claims_2_60).is_err());
        assert!(decode::<Proposal>(&[1, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]).is_err());
        // A byte string of u32::MAX bytes, 3 present.
        assert!(decode::<serde_bytes::ByteBuf>(&[0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 1, 2, 3]).is_err());
    }

    #[test]
    fn versioned_records_are_told_apart_from_older_ones() {
        let v = encode_versioned(3, &vec![1u32, 2]);
        let (version, body) = split_version(&v);
        assert_eq!(version, 3);
        assert_eq!(decode::<Vec<u32>>(body).unwrap(), vec![1, 2]);
        // Vecs of every length that starts a varint with 0xFF stay version 0.
        for n in [0usize, 1, 127, 128, 255, 16_383, 16_384] {
            let old = encode(&vec![0u8; n]);
            assert_eq!(split_version(&old).0, 0, "a Vec of {n}");
        }
    }
}
