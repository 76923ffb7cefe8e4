//! Multi-raft for tidal on openraft: every group a node hosts (PRGs and the
//! control plane `_cp`) shares the node's storage, a redb log file and a
//! redb state file, each with a group-committing writer ([`storage`]), and
//! one connection per peer ([`transport`]). What a group's
//! entries mean is supplied by a [`Machine`]; the key-value machine of PRGs
//! lives here ([`kv_machine`]).
#![forbid(unsafe_code)]
// openraft's `StorageError` is large by design and is what its traits return.
#![allow(clippy::result_large_err)]

pub mod host;
pub mod kv_deadlines;
pub mod kv_entry;
pub mod kv_machine;
mod kv_overlay;
pub mod kv_proposer;
mod kv_purge;
pub mod log_gc;
pub mod log_store;
pub mod machine;
pub mod notices;
pub mod read_gate;
pub mod runtime;
pub mod snapshot;
pub mod state_machine;
pub mod storage;
pub mod transport;
pub mod types;
pub mod waiters;
pub mod writer;

#[cfg(test)]
mod tests;

pub use host::{AppHandler, GroupHandle, HostError, RaftHost, RaftTuning};
pub use machine::Machine;
pub use storage::{CommitDelay, Storage, StorageOptions, StoreError, WriterRuntime, DEFAULT_STORAGE_CACHE_BYTES};
pub use types::{Proposal, Raft, TypeConfig};
