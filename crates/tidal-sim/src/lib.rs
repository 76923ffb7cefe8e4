//! tidal under simulation: whole nodes (their PRGs, the control plane and
//! the routers, the production code unchanged) run as turmoil hosts in one
//! process, on a simulated network, clock and disk.
//!
//! ```text
//!   turmoil Sim ── host "node1" ── tidal_node::Node::start(config, Network, Disk, Clock)
//!        │          host "node2"      │        │        │      └─ SimClock (simulated wall time)
//!        │          host "node3"      │        │        └─ SimDisk (survives crashes, loses unsynced writes)
//!        │                            │        └─ SimAcceptor / SimConnector (turmoil TCP)
//!        └── client "client" ── RESP over turmoil TCP ──► any node
//! ```
//!
//! Each node gets the injection points the binary fills with real sockets,
//! files and the OS clock. Storage writers run as tasks of the node's
//! simulated runtime, so commits happen at simulated instants.
#![forbid(unsafe_code)]

pub mod campaign;
pub mod disk;
pub mod http;
pub mod invariants;
pub mod net;
pub mod resp;

pub use disk::{MemBackend, SimDisk};
pub use net::{SimAcceptor, SimClock, SimConnector};
