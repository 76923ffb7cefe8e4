//! `tidal bench`: a load generator that verifies.
//!
//! It drives YCSB-style workloads (A, B, C, write-only, any read/write mix;
//! uniform or zipfian keys) against tidal or Redis over RESP, etcd over
//! gRPC, or tidal's HTTP API; closed loop or at a fixed open-loop rate;
//! in phases shaped like load-testing runbooks (steady, spike, stress,
//! soak). With `--verify` it stamps every write and checks that nothing
//! acknowledged is lost and no read is stale. Later scaling tests run
//! under it.
//!
//! ```text
//!   spec (validated flags) ──► runner ──► clients ──► driver ──► target
//!                                │           └──► recorder / verifier
//!                                └──► report (lines, summary, JSON)
//! ```
#![forbid(unsafe_code)]

pub mod driver;
pub mod histogram;
pub mod history;
pub mod recorder;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod spec;
pub mod verify;
pub mod workload;

pub use report::{render, Summary};
pub use runner::{run, Progress, RunError};
pub use spec::{RawSpec, Spec, SpecError};
