//! The `_cp` group's state machine: the whole [`ClusterState`] kept in
//! memory, published to watchers as each change applies, and written to
//! the state file as one record when the group flushes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use redb::{ReadTransaction, TableDefinition, WriteTransaction};
use tidal_core::ClusterState;
use tidal_raft::machine::FlushJob;
use tidal_raft::snapshot::{self, SnapshotPieces, WholePieces};
use tidal_raft::storage::Db;
use tidal_raft::types::encode as enc;
use tidal_raft::Machine;
use tokio::sync::watch;

use crate::command::apply;
use crate::state_format::{decode_command, decode_state, encode_state};

const CP_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("cp_state");
const KEY: &str = "state";
/// The group an arriving snapshot is staged under.
const STAGE_KEY: &str = tidal_core::ids::CP_GROUP;
/// Most bytes a `_cp` snapshot may carry: one peer frame (see
/// [`CpMachine::max_snapshot_bytes`]).
pub const MAX_CP_SNAPSHOT_BYTES: u64 = tidal_raft::transport::MAX_FRAME as u64;

pub struct CpMachine {
    /// The applied state; changes are made here and then published.
    state: Mutex<ClusterState>,
    /// Bytes of commands applied since the last freeze.
    unflushed: AtomicUsize,
    published: watch::Sender<Arc<ClusterState>>,
}

impl CpMachine {
    /// Load the persisted state (if any) from `storage`.
    pub fn open(storage: &tidal_raft::Storage) -> Result<Arc<Self>, String> {
        let state = Self::load(storage.state())?;
        let (published, _) = watch::channel(Arc::new(state.clone()));
        Ok(Arc::new(Self { state: Mutex::new(state), unflushed: AtomicUsize::new(0), published }))
    }

    fn load(db: &Db) -> Result<ClusterState, String> {
        let txn = db.read().map_err(|e| e.to_string())?;
        match txn.open_table(CP_STATE) {
            Ok(t) => match t.get(KEY).map_err(|e| e.to_string())? {
                Some(v) => decode_state(v.value()),
                None => Ok(ClusterState::default()),
            },
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(ClusterState::default()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The latest applied state on this replica (not necessarily the
    /// cluster's latest: use a linearizable read for that).
    pub fn state(&self) -> Arc<ClusterState> {
        self.published.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<ClusterState>> {
        self.published.subscribe()
    }

    fn persist(txn: &WriteTransaction, state: &ClusterState) -> Result<(), String> {
        let mut t = txn.open_table(CP_STATE).map_err(|e| e.to_string())?;
        t.insert(KEY, encode_state(state).as_slice()).map_err(|e| e.to_string())?;
        Ok(())
    }
}

impl Machine for CpMachine {
    fn apply(&self, _state: &Db, index: u64, now_ms: u64, body: &[u8]) -> Result<Vec<u8>, String> {
        // An entry that cannot be read stops the group rather than being
        // skipped: skipping would let replicas diverge.
        let cmd = decode_command(body).map_err(|e| format!("_cp entry {index} cannot be applied: {e}"))?;
        let mut state = self.state.lock().expect("state lock");
        let reply = apply(&mut state, now_ms, &cmd);
        self.unflushed.fetch_add(body.len(), Ordering::Relaxed);
        self.published.send_replace(Arc::new(state.clone()));
        Ok(enc(&reply))
    }

    fn unflushed_bytes(&self) -> usize {
        self.unflushed.load(Ordering::Relaxed)
    }

    fn freeze(&self) -> FlushJob {
        let state = self.state.lock().expect("state lock").clone();
        self.unflushed.store(0, Ordering::Relaxed);
        Box::new(move |txn: &WriteTransaction| Self::persist(txn, &state))
    }

    fn flushed(&self, _ok: bool) {}

    fn export(&self, txn: &ReadTransaction) -> Result<Box<dyn SnapshotPieces>, String> {
        let data = match txn.open_table(CP_STATE) {
            Ok(t) => t.get(KEY).map_err(|e| e.to_string())?.map(|v| v.value().to_vec()).unwrap_or_default(),
            Err(redb::TableError::TableDoesNotExist(_)) => Vec::new(),
            Err(e) => return Err(e.to_string()),
        };
        Ok(Box::new(WholePieces::new(data)))
    }

    fn stage(&self, first: bool, piece: &[u8]) -> Result<FlushJob, String> {
        Ok(snapshot::stage_whole(STAGE_KEY, first, piece))
    }

    /// The state is staged as one record, rewritten in memory as each
    /// piece arrives, and decoded whole before it installs; and every node
    /// is sent the whole state in one frame (`CpResponse::State`), so a
    /// state longer than a frame could not be served anyway.
    fn max_snapshot_bytes(&self) -> Option<u64> {
        Some(MAX_CP_SNAPSHOT_BYTES)
    }

    fn unstage(&self) -> FlushJob {
        Box::new(|txn: &WriteTransaction| snapshot::take_staged(txn, STAGE_KEY).map(drop))
    }

    fn check_staged(&self, state: &Db) -> Result<(), String> {
        let data = snapshot::read_staged(state, STAGE_KEY)?;
        if !data.is_empty() {
            decode_state(&data)?;
        }
        Ok(())
    }

    fn import_staged(&self, txn: &WriteTransaction) -> Result<(), String> {
        let data = snapshot::take_staged(txn, STAGE_KEY)?;
        // Decoded once by `check_staged`: this cannot fail now.
        let state: ClusterState = if data.is_empty() { ClusterState::default() } else { decode_state(&data)? };
        Self::persist(txn, &state)
    }

    fn reload(&self, state: &Db) -> Result<(), String> {
        let loaded = Self::load(state)?;
        *self.state.lock().expect("state lock") = loaded.clone();
        self.unflushed.store(0, Ordering::Relaxed);
        self.published.send_replace(Arc::new(loaded));
        Ok(())
    }

    fn purge(&self, txn: &WriteTransaction) -> Result<(), String> {
        let mut t = txn.open_table(CP_STATE).map_err(|e| e.to_string())?;
        t.remove(KEY).map_err(|e| e.to_string())?;
        Ok(())
    }
}
