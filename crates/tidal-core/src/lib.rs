//! Plain data and pure decisions for tidal: ids, slot hashing, routing, cache
//! states, placement, Redis command semantics and the RESP codec. Nothing
//! here touches a socket, a clock or a file: time is a parameter.
#![forbid(unsafe_code)]

pub mod autoscale;
pub mod cache_state;
pub mod cluster;
pub mod dice;
pub mod health;
pub mod ids;
pub mod kv;
pub mod linearizability;
pub mod operation;
pub mod ownership;
pub mod placement;
pub mod planner;
pub mod replica_move;
pub mod resp;
pub mod shrink;
pub mod slot;
pub mod slot_move;

pub use cache_state::{CacheState, CacheThresholds};
pub use cluster::{ClusterState, NodeInfo, NodeState, Placement, Registration, Tenant};
pub use ids::{GroupId, NodeId, PrgId};
