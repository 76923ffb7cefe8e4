//! The control plane on a real host and socket: a node's identity is
//! checked at registration, and an oversized snapshot is refused. They live
//! in the library's test build rather than in test binaries of their own.

mod cp_identity;
mod cp_snapshot;
