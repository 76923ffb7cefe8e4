//! The tidal node server: hosts replicas, routes client commands (RESP and
//! HTTP) to PRG leaders, keeps the control-plane cache, and serves the admin
//! API.
#![forbid(unsafe_code)]

pub mod admin;
pub mod autoscale_api;
pub mod cache;
pub mod clock;
pub mod command_stats;
pub mod config;
pub mod disk;
pub mod drain_api;
pub mod follower_reads;
pub mod forward;
pub mod http;
pub mod load;
pub mod metrics;
mod move_ops;
pub mod moves_api;
pub mod node;
pub mod operations_api;
pub mod pubsub;
pub mod reaper;
pub mod resp_server;
pub mod router;
pub mod scale_api;
pub mod scan;
pub mod script;
mod script_libs;
mod script_lua;
pub mod shrink_api;
pub mod tls;

#[cfg(test)]
mod tests;

pub use clock::{Clock, SystemClock};
pub use config::{ConfigErrors, NodeConfig, RawConfig};
pub use disk::{DataDir, Disk};
pub use node::{Network, Node, NodeError};
