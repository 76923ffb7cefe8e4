//! The key-value machine of a PRG: Redis string semantics
//! ([`tidal_core::kv`]) over one redb table per PRG (`kv/<tenant>:<index>`).
//!
//! Writes arrive as batches of [`WriteOp`]s in committed entries (see
//! [`crate::kv_proposer`]) and apply, in order, at the proposing leader's
//! clock reading, so TTLs resolve identically on every
//! replica. Reads run on a read transaction after the router has confirmed
//! leadership (`ensure_linearizable`).

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, TableError, WriteTransaction};
use tidal_core::kv::{self as engine, KvStore, ReadOp, Record, Reply, StoreError as KvError, WriteOp};

use crate::machine::Machine;
use crate::storage::{Storage, StoreError};
use crate::types::{decode, encode};

/// The log-entry body of a batch of writes.
pub fn encode_batch(ops: &[WriteOp]) -> Vec<u8> {
    encode(&ops)
}

pub struct KvMachine {
    table: String,
}

type Def<'a> = TableDefinition<'a, &'static [u8], &'static [u8]>;

fn kv_err(e: impl std::fmt::Display) -> KvError {
    KvError(e.to_string())
}

fn get_in(t: &impl ReadableTable<&'static [u8], &'static [u8]>, key: &[u8]) -> Result<Option<Record>, KvError> {
    match t.get(key).map_err(kv_err)? {
        Some(v) => Record::decode(v.value()).map(Some).map_err(kv_err),
        None => Ok(None),
    }
}

fn scan_in(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, Record)>, KvError> {
    let range = match after {
        Some(a) => t.range::<&[u8]>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
        None => t.range::<&[u8]>(..),
    }
    .map_err(kv_err)?;
    let mut out = Vec::new();
    for row in range.take(limit) {
        let (k, v) = row.map_err(kv_err)?;
        out.push((k.value().to_vec(), Record::decode(v.value()).map_err(kv_err)?));
    }
    Ok(out)
}

/// A PRG's table inside the writer's transaction.
struct WriteStore<'t>(redb::Table<'t, &'static [u8], &'static [u8]>);

impl KvStore for WriteStore<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, KvError> {
        get_in(&self.0, key)
    }
    fn put(&mut self, key: &[u8], rec: &Record) -> Result<(), KvError> {
        self.0.insert(key, rec.encode().as_slice()).map_err(kv_err)?;
        Ok(())
    }
    fn delete(&mut self, key: &[u8]) -> Result<bool, KvError> {
        Ok(self.0.remove(key).map_err(kv_err)?.is_some())
    }
    fn scan(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Record)>, KvError> {
        scan_in(&self.0, after, limit)
    }
    fn clear(&mut self) -> Result<u64, KvError> {
        let n = self.0.len().map_err(kv_err)?;
        self.0.retain(|_, _| false).map_err(kv_err)?;
        Ok(n)
    }
    fn len(&self) -> Result<u64, KvError> {
        self.0.len().map_err(kv_err)
    }
}

/// A PRG's table in a read transaction; `None` when nothing was written yet.
struct ReadStore(Option<redb::ReadOnlyTable<&'static [u8], &'static [u8]>>);

impl KvStore for ReadStore {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, KvError> {
        self.0.as_ref().map_or(Ok(None), |t| get_in(t, key))
    }
    fn put(&mut self, _: &[u8], _: &Record) -> Result<(), KvError> {
        Err(KvError("write on a read-only view".into()))
    }
    fn delete(&mut self, _: &[u8]) -> Result<bool, KvError> {
        Err(KvError("write on a read-only view".into()))
    }
    fn scan(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Record)>, KvError> {
        self.0.as_ref().map_or(Ok(Vec::new()), |t| scan_in(t, after, limit))
    }
    fn clear(&mut self) -> Result<u64, KvError> {
        Err(KvError("write on a read-only view".into()))
    }
    fn len(&self) -> Result<u64, KvError> {
        self.0.as_ref().map_or(Ok(0), |t| t.len().map_err(kv_err))
    }
}

impl KvMachine {
    pub fn new(group: &str) -> Self {
        Self { table: format!("kv/{group}") }
    }

    fn def(&self) -> Def<'_> {
        TableDefinition::new(&self.table)
    }

    fn read_store(&self, txn: &ReadTransaction) -> Result<ReadStore, String> {
        match txn.open_table(self.def()) {
            Ok(t) => Ok(ReadStore(Some(t))),
            Err(TableError::TableDoesNotExist(_)) => Ok(ReadStore(None)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Evaluate a read against the latest applied state on this replica.
    pub fn read(&self, storage: &Storage, op: &ReadOp, now_ms: u64) -> Result<Reply, StoreError> {
        let txn = storage.state().read()?;
        let store = self.read_store(&txn).map_err(StoreError::Db)?;
        engine::read(op, now_ms, &store).map_err(|e| StoreError::Db(e.0))
    }

    /// Number of stored records (expired ones included), for status pages.
    pub fn stored_keys(&self, storage: &Storage) -> Result<u64, StoreError> {
        let txn = storage.state().read()?;
        self.read_store(&txn).map_err(StoreError::Db)?.len().map_err(|e| StoreError::Db(e.0))
    }
}

impl Machine for KvMachine {
    fn apply(&self, txn: &WriteTransaction, now_ms: u64, body: &[u8]) -> Result<Vec<u8>, String> {
        let replies = match decode::<Vec<WriteOp>>(body) {
            Ok(ops) => {
                let mut store = WriteStore(txn.open_table(self.def()).map_err(|e| e.to_string())?);
                let mut out = Vec::with_capacity(ops.len());
                for op in &ops {
                    out.push(engine::apply(op, now_ms, &mut store).map_err(|e| e.0)?);
                }
                out
            }
            // Nothing in a malformed entry applies; there is nobody to answer.
            Err(e) => {
                tracing::error!(table = %self.table, error = %e, "malformed write batch in the log; skipped");
                Vec::new()
            }
        };
        Ok(encode(&replies))
    }

    fn export(&self, txn: &ReadTransaction) -> Result<Vec<u8>, String> {
        let store = self.read_store(txn)?;
        let mut rows: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        if let Some(t) = &store.0 {
            for row in t.iter().map_err(|e| e.to_string())? {
                let (k, v) = row.map_err(|e| e.to_string())?;
                rows.push((k.value().to_vec(), v.value().to_vec()));
            }
        }
        Ok(encode(&rows))
    }

    fn import(&self, txn: &WriteTransaction, data: &[u8]) -> Result<(), String> {
        let rows: Vec<(Vec<u8>, Vec<u8>)> = decode(data).map_err(|e| e.to_string())?;
        let mut t = txn.open_table(self.def()).map_err(|e| e.to_string())?;
        t.retain(|_, _| false).map_err(|e| e.to_string())?;
        for (k, v) in rows {
            t.insert(k.as_slice(), v.as_slice()).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
