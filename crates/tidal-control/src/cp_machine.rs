//! The `_cp` group's state machine: the whole [`ClusterState`] kept in
//! memory, persisted as one record per change, and published to watchers
//! once each change has committed.

use std::sync::{Arc, Mutex};

use redb::{ReadTransaction, TableDefinition, WriteTransaction};
use tidal_core::ClusterState;
use tidal_raft::types::encode as enc;
use tidal_raft::Machine;
use tokio::sync::watch;

use crate::command::{apply, CpCommand, CpReply};

const CP_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("cp_state");
const KEY: &str = "state";

pub struct CpMachine {
    /// Changes applied in a transaction that has not committed yet.
    staged: Mutex<Option<ClusterState>>,
    published: watch::Sender<Arc<ClusterState>>,
}

impl CpMachine {
    /// Load the persisted state (if any) from `storage`.
    pub fn open(storage: &tidal_raft::Storage) -> Result<Arc<Self>, String> {
        let txn = storage.state().read().map_err(|e| e.to_string())?;
        let state = match txn.open_table(CP_STATE) {
            Ok(t) => match t.get(KEY).map_err(|e| e.to_string())? {
                Some(v) => postcard::from_bytes(v.value()).map_err(|e| e.to_string())?,
                None => ClusterState::default(),
            },
            Err(redb::TableError::TableDoesNotExist(_)) => ClusterState::default(),
            Err(e) => return Err(e.to_string()),
        };
        let (published, _) = watch::channel(Arc::new(state));
        Ok(Arc::new(Self { staged: Mutex::new(None), published }))
    }

    /// The latest committed state on this replica (not necessarily the
    /// cluster's latest: use a linearizable read for that).
    pub fn state(&self) -> Arc<ClusterState> {
        self.published.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<ClusterState>> {
        self.published.subscribe()
    }

    fn persist(txn: &WriteTransaction, state: &ClusterState) -> Result<(), String> {
        let mut t = txn.open_table(CP_STATE).map_err(|e| e.to_string())?;
        t.insert(KEY, enc(state).as_slice()).map_err(|e| e.to_string())?;
        Ok(())
    }
}

impl Machine for CpMachine {
    fn apply(&self, txn: &WriteTransaction, _now_ms: u64, body: &[u8]) -> Result<Vec<u8>, String> {
        let mut staged = self.staged.lock().expect("staged lock");
        let mut state = staged.take().unwrap_or_else(|| (*self.state()).clone());
        let reply = match postcard::from_bytes::<CpCommand>(body) {
            Ok(cmd) => apply(&mut state, &cmd),
            Err(e) => CpReply::Refused(format!("malformed control-plane command: {e}")),
        };
        Self::persist(txn, &state)?;
        *staged = Some(state);
        Ok(enc(&reply))
    }

    fn export(&self, txn: &ReadTransaction) -> Result<Vec<u8>, String> {
        match txn.open_table(CP_STATE) {
            Ok(t) => Ok(t.get(KEY).map_err(|e| e.to_string())?.map(|v| v.value().to_vec()).unwrap_or_default()),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(Vec::new()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn import(&self, txn: &WriteTransaction, data: &[u8]) -> Result<(), String> {
        let state: ClusterState = if data.is_empty() {
            ClusterState::default()
        } else {
            postcard::from_bytes(data).map_err(|e| e.to_string())?
        };
        Self::persist(txn, &state)?;
        *self.staged.lock().expect("staged lock") = Some(state);
        Ok(())
    }

    fn committed(&self) {
        if let Some(s) = self.staged.lock().expect("staged lock").take() {
            self.published.send_replace(Arc::new(s));
        }
    }
}
