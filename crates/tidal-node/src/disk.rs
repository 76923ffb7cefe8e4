//! Where a node keeps its data. The binary uses its data directory
//! ([`DataDir`]): two redb files and an `identity` file. A simulation hands
//! each node a disk of its own that survives the node's crashes and loses
//! what a crash would.

use std::path::PathBuf;
use std::sync::Arc;

use tidal_core::NodeId;
use tidal_raft::{Storage, StorageOptions};

use crate::node::NodeError;

pub trait Disk: Send + Sync + 'static {
    /// The instance of this data: made once, when the data is new, so that
    /// the control plane can tell a node that lost its data from one that
    /// restarted. Data that belongs to another node id is refused.
    fn instance(&self, me: NodeId) -> Result<u64, NodeError>;
    /// The node's storage, opened (or created) with its writers started.
    fn open(&self, options: StorageOptions) -> Result<Arc<Storage>, NodeError>;
}

/// A data directory on the local file system.
pub struct DataDir(pub PathBuf);

impl Disk for DataDir {
    fn instance(&self, me: NodeId) -> Result<u64, NodeError> {
        std::fs::create_dir_all(&self.0).map_err(|e| NodeError::DataDir(self.0.display().to_string(), e))?;
        data_dir_instance(&self.0, me)
    }

    fn open(&self, options: StorageOptions) -> Result<Arc<Storage>, NodeError> {
        Ok(Storage::open(&self.0, options)?)
    }
}

/// The instance of the data directory `dir` of node `me`: read from its
/// `identity` file, or made (random) with the file when there is none. A
/// directory that belongs to another node id is refused.
fn data_dir_instance(dir: &std::path::Path, me: NodeId) -> Result<u64, NodeError> {
    use rand::{RngCore, SeedableRng};
    let path = dir.join("identity");
    let bad = |why: String| NodeError::Identity(format!("{}: {why}", path.display()));
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let mut node = None;
            let mut instance = None;
            for line in text.lines() {
                match line.split_once(' ') {
                    Some(("node", v)) => node = v.trim().parse::<NodeId>().ok(),
                    Some(("instance", v)) => instance = u64::from_str_radix(v.trim(), 16).ok(),
                    _ => {}
                }
            }
            match (node, instance) {
                (Some(n), Some(i)) if n == me => Ok(i),
                (Some(n), Some(_)) => Err(bad(format!("this data directory belongs to node {n}, not {me}"))),
                _ => Err(bad("unreadable; expected `node <id>` and `instance <hex>` lines".into())),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let instance = rand::rngs::SmallRng::from_os_rng().next_u64();
            let tmp = dir.join("identity.tmp");
            let write = || -> std::io::Result<()> {
                use std::io::Write;
                let mut f = std::fs::File::create(&tmp)?;
                writeln!(f, "node {me}\ninstance {instance:016x}")?;
                f.sync_all()?;
                std::fs::rename(&tmp, &path)
            };
            write().map_err(|e| bad(e.to_string()))?;
            Ok(instance)
        }
        Err(e) => Err(bad(e.to_string())),
    }
}
