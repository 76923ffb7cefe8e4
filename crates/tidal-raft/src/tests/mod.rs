//! Tests of the crate's parts working together: a host over a real socket,
//! a PRG's state machine, and openraft's storage suite. They live in the
//! library's test build, which already compiles openraft's generic code for
//! tidal's types, rather than in test binaries of their own that would
//! compile it again.

mod host;
mod kv_state;
mod storage_suite;
