//! The control plane: the `_cp` Raft group's state machine (nodes, tenants,
//! placements, routing epoch) and the API every node uses to read and
//! change it.
#![forbid(unsafe_code)]

pub mod api;
pub mod autoscaler;
pub mod command;
pub mod cp_machine;
pub mod cp_votes;
pub mod executor;
pub mod failpoint;
pub mod operation_executor;
pub mod replica_executor;
pub mod self_heal;
pub mod state_format;
#[cfg(test)]
mod tests;

pub use api::{ControlPlane, CpError, CpRequest, CpResponse, NodeReport};
pub use autoscaler::{Autoscaler, ScaleActions};
pub use command::{CpCommand, CpReply};
pub use cp_machine::CpMachine;
pub use executor::{Copied, ExecutorConfig, MoveExecutor, MoveOps, StepError};
pub use operation_executor::OperationExecutor;
pub use replica_executor::MemberChange;
pub use self_heal::HealConfig;
