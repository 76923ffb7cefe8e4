//! A simulated disk: redb storage in memory that outlives a node's crashes
//! and loses, on a crash, every write not yet synced.
//!
//! ```text
//!   write/set_len ──► current image ──sync_data──► durable image
//!   crash: fence (refuse writes and syncs) ──► current := durable
//!   slow_down(d): every commit of the node's writers takes d
//! ```
//!
//! The fence matters: a crashed node's tasks are dropped, and dropping a
//! redb database commits and syncs what it holds, which would turn a crash
//! into a clean shutdown. A fenced backend refuses that last sync.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tidal_core::NodeId;
use tidal_node::{Disk, NodeError};
use tidal_raft::{CommitDelay, Storage, StorageOptions, WriterRuntime};

#[derive(Debug, Default)]
struct Images {
    current: Vec<u8>,
    durable: Vec<u8>,
    /// Byte ranges of `current` written since the last sync: a sync copies
    /// only these (and the length), not the whole file.
    dirty: Vec<std::ops::Range<usize>>,
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
        i.dirty.clear();
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
        let (old, len) = (i.current.len(), len as usize);
        i.current.resize(len, 0);
        if len > old {
            i.dirty.push(old..len);
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut i = self.0.lock().unwrap();
        if i.fenced {
            return Err(fenced());
        }
        let Images { current, durable, dirty, .. } = &mut *i;
        durable.resize(current.len(), 0);
        for r in dirty.drain(..) {
            let r = r.start.min(current.len())..r.end.min(current.len());
            durable[r.clone()].copy_from_slice(&current[r]);
        }
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
        i.dirty.push(offset as usize..end);
        Ok(())
    }
}

/// A node's disk: its two redb files, how long a commit takes, and the
/// node's identity.
#[derive(Debug, Clone, Default)]
pub struct SimDisk {
    log: MemBackend,
    state: MemBackend,
    delay: CommitDelay,
    identity: Arc<Mutex<Option<(NodeId, u64)>>>,
}

impl SimDisk {
    /// The node crashed: unsynced writes are gone.
    pub fn crash(&self) {
        self.log.crash();
        self.state.crash();
    }

    /// Every commit to this disk takes `delay` from now on (zero: as fast
    /// as memory).
    pub fn slow_down(&self, delay: Duration) {
        self.delay.set(delay);
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
        Ok(Storage::on_backends(self.log.clone(), self.state.clone(), WriterRuntime::Task(self.delay.clone()))?)
    }
}

#[cfg(test)]
mod tests {
    use redb::StorageBackend;

    use super::*;

    fn image(b: &MemBackend) -> Vec<u8> {
        let mut out = vec![0; b.len().unwrap() as usize];
        b.read(0, &mut out).unwrap();
        out
    }

    #[test]
    fn a_crash_keeps_what_was_synced_and_loses_the_rest() {
        let b = MemBackend::default();
        b.write(0, b"abcdef").unwrap();
        b.sync_data().unwrap();
        b.write(2, b"XY").unwrap();
        b.set_len(10).unwrap();
        b.write(8, b"zz").unwrap();
        assert_eq!(image(&b), b"abXYef\0\0zz");
        b.crash();
        assert_eq!(image(&b), b"abcdef", "only the synced image survives");
        assert!(b.write(0, b"q").is_err() && b.sync_data().is_err(), "a crashed disk takes nothing more");
        b.reopen();
        // Shrink, sync, grow: the grown bytes are zeros, durably too.
        b.set_len(2).unwrap();
        b.sync_data().unwrap();
        b.set_len(6).unwrap();
        b.write(5, b"!").unwrap();
        b.sync_data().unwrap();
        b.crash();
        assert_eq!(image(&b), b"ab\0\0\0!");
    }
}
