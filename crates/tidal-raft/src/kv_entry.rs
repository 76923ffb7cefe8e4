//! What a PRG's log entries carry, and what applying one answers.
//!
//! Every entry body is versioned ([`crate::types::encode_versioned`]):
//! version 0 is a bare batch of writes, as written before entries carried
//! a version; version 1 is a [`KvEntry`]. A body that does not decode, or
//! of a version this node does not know, stops the group with an error:
//! skipping it would let replicas diverge.

use serde::{Deserialize, Serialize};
use tidal_core::kv::{Reply, WriteOp};
use tidal_core::ownership::{MoveId, Refusal, SlotCommand};

use crate::types::{decode, encode_versioned, split_version};

/// The format version new entries are written in.
pub const KV_ENTRY_VERSION: u8 = 1;

/// One row of a slot being copied: its stored key (slot first) and its
/// encoded record, or `None` when the key was deleted since it was copied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub record: Option<Vec<u8>>,
}

impl Row {
    /// Bytes the row carries, for progress and rate limits.
    pub fn size(&self) -> usize {
        self.key.len() + self.record.as_ref().map_or(0, Vec::len)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum KvEntry {
    /// Client writes, applied in order; each is checked against the
    /// ownership of its keys' slots.
    Writes(Vec<WriteOp>),
    /// A change of slot ownership by a move.
    Slots(SlotCommand),
    /// Rows copied in by a move; every row's slot must be importing for it.
    Rows { move_id: MoveId, rows: Vec<Row> },
}

/// What applying one write answers: its reply, or why it was not applied.
pub type Outcome = Result<Reply, Refusal>;

/// What applying a `Slots` or `Rows` entry answers: the entry's log index,
/// or why nothing was applied.
pub type ControlOutcome = Result<u64, String>;

pub fn encode_entry(e: &KvEntry) -> Vec<u8> {
    encode_versioned(KV_ENTRY_VERSION, e)
}

/// The entry of a batch of writes.
pub fn encode_batch(ops: &[WriteOp]) -> Vec<u8> {
    // Written as a version-1 entry without cloning the ops.
    #[derive(Serialize)]
    enum Borrowed<'a> {
        Writes(&'a [WriteOp]),
    }
    encode_versioned(KV_ENTRY_VERSION, &Borrowed::Writes(ops))
}

pub fn decode_entry(body: &[u8]) -> Result<KvEntry, String> {
    match split_version(body) {
        (0, b) => decode::<Vec<WriteOp>>(b).map(KvEntry::Writes).map_err(|e| format!("entry of version 0: {e}")),
        (KV_ENTRY_VERSION, b) => decode(b).map_err(|e| format!("entry of version {KV_ENTRY_VERSION}: {e}")),
        (v, _) => Err(format!("entry of version {v}, newer than this node understands ({KV_ENTRY_VERSION})")),
    }
}

#[cfg(test)]
#[path = "kv_entry_tests.rs"]
mod tests;
