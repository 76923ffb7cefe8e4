//! openraft's own conformance suite run against tidal's log store and
//! state machine (on an in-memory redb), so the storage contract openraft
//! relies on is checked, not assumed.

use std::sync::Arc;

use crate::kv_machine::{KvMachine, KvSpec};
use crate::log_store::LogStore;
use crate::state_machine::GroupStateMachine;
use crate::types::StorageError;
use crate::{Storage, TypeConfig};
use openraft::testing::log::{StoreBuilder, Suite};
use openraft::{ErrorSubject, ErrorVerb};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, GroupStateMachine, ()> for Builder {
    async fn build(&self) -> Result<((), LogStore, GroupStateMachine), StorageError> {
        let store_err = |e: std::io::Error| StorageError::from_io_error(ErrorSubject::Store, ErrorVerb::Write, e);
        let s = Storage::in_memory().map_err(|e| store_err(std::io::Error::other(e)))?;
        let machine = Arc::new(KvMachine::new("default:0", &KvSpec::whole(1024)));
        let state = GroupStateMachine::new("default:0", s.clone(), machine).map_err(store_err)?;
        Ok(((), LogStore::new("default:0", s), state))
    }
}

#[tokio::test]
async fn tidal_storage_passes_the_openraft_suite() {
    Suite::test_all(Builder).await.unwrap();
}
