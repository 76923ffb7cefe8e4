//! A simulated disk: redb storage in memory that outlives a node's crashes
//! and loses, on a crash, every write not yet synced.
//!
//! ```text
//!   write/set_len ──► current image ──sync_data──► durable image
//!   crash: fence (refuse writes and syncs) ──► current := durable
//! ```
//!
//! The fence matters: a crashed node's tasks are dropped, and dropping a
//! redb database commits and syncs what it holds, which would turn a crash
//! into a clean shutdown. A fenced backend refuses that last sync.

use std::io;
use std::sync::{Arc, Mutex};

use tidal_core::NodeId;
use tidal_node::{Disk, NodeError};
use tidal_raft::{Storage, StorageOptions, WriterRuntime};

#[derive(Debug, Default)]
struct Images {
    current: Vec<u8>,
    durable: Vec<u8>,
    fenced: bool,
}

/// One redb file: a shared handle, so the disk keeps it across restarts.
#[derive(Debug, Clone, Default)]
pub struct MemBackend(Arc<Mutex<Images>>);

fn fenced() -> io::Error {
    io::Error::other("the node crashed: its disk takes no more writes")
}

impl MemBackend {
    /// Forgets everything written since the last sync and refuses writes
    /// until the file is opened again.
    pub fn crash(&self) {
        let mut i = self.0.lock().unwrap();
        i.fenced = true;
        i.current = i.durable.clone();
    }

    fn reopen(&self) {
        self.0.lock().unwrap().fenced = false;
    }
}

impl redb::StorageBackend for MemBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.lock().unwrap().current.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let i = self.0.lock().unwrap();
        let start = offset as usize;
        let bytes = i
            .current
            .get(start..start + out.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, format!("read past the end at {offset}")))?;
        out.copy_from_slice(bytes);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut i = self.0.lock().unwrap();
        if i.fenced {
            return Err(fenced());
        }
        i.current.resize(len as usize, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut i = self.0.lock().unwrap();
        if i.fenced {
            return Err(fenced());
        }
        i.durable = i.current.clone();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut i = self.0.lock().unwrap();
        if i.fenced {
            return Err(fenced());
        }
        let end = offset as usize + data.len();
        if i.current.len() < end {
            i.current.resize(end, 0);
        }
        i.current[offset as usize..end].copy_from_slice(data);
        Ok(())
    }
}

/// A node's disk: its two redb files and its identity.
#[derive(Debug, Clone, Default)]
pub struct SimDisk {
    log: MemBackend,
    state: MemBackend,
    identity: Arc<Mutex<Option<(NodeId, u64)>>>,
}

impl SimDisk {
    /// The node crashed: unsynced writes are gone.
    pub fn crash(&self) {
        self.log.crash();
        self.state.crash();
    }
}

impl Disk for SimDisk {
    fn instance(&self, me: NodeId) -> Result<u64, NodeError> {
        let mut id = self.identity.lock().unwrap();
        match *id {
            Some((node, instance)) if node == me => Ok(instance),
            Some((node, _)) => Err(NodeError::Identity(format!("this disk belongs to node {node}, not {me}"))),
            None => {
                // Made once per disk; distinct per node and the same in every run.
                let instance = 0x5157_0000_0000_0000 | me;
                *id = Some((me, instance));
                Ok(instance)
            }
        }
    }

    fn open(&self, _options: StorageOptions) -> Result<Arc<Storage>, NodeError> {
        self.log.reopen();
        self.state.reopen();
        Ok(Storage::on_backends(self.log.clone(), self.state.clone(), WriterRuntime::Task)?)
    }
}
