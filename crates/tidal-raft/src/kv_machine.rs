//! The key-value machine of a PRG: Redis string semantics
//! ([`tidal_core::kv`]) over one redb table per PRG (`kv/<tenant>:<index>`),
//! with the writes not yet flushed to the table held in memory
//! ([`crate::kv_overlay`]).
//!
//! Writes arrive as batches of [`WriteOp`]s in committed entries (see
//! [`crate::kv_proposer`]) and apply, in order, at the proposing leader's
//! clock reading, so TTLs resolve identically on every
//! replica. Reads run against the layers and a read transaction after the
//! router has confirmed leadership (`ensure_linearizable`).

use std::cell::OnceCell;
use std::sync::{Arc, RwLock};

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, TableError, WriteTransaction};
use tidal_core::kv::{self as engine, KvStore, ReadOp, Record, Reply, StoreError as KvError, WriteOp};

use crate::kv_overlay::{self as overlay, Base, BaseIter, Layer};
use crate::machine::{FlushJob, Machine};
use crate::storage::{Db, Storage, StoreError};
use crate::types::{decode, encode};

/// The log-entry body of a batch of writes.
pub fn encode_batch(ops: &[WriteOp]) -> Vec<u8> {
    encode(&ops)
}

/// Writes applied but not yet in the table: the layer new writes go to,
/// and the one being written to the table, if any.
#[derive(Default)]
struct Layers {
    active: Layer,
    frozen: Option<Arc<Layer>>,
}

impl Layers {
    fn stack(&self) -> Vec<&Layer> {
        std::iter::once(&self.active).chain(self.frozen.as_deref()).collect()
    }
}

pub struct KvMachine {
    table: String,
    layers: RwLock<Layers>,
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

/// A PRG's table in a read transaction; `None` when nothing was written yet.
struct Table(Option<redb::ReadOnlyTable<&'static [u8], &'static [u8]>>);

impl Base for Table {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, KvError> {
        self.0.as_ref().map_or(Ok(None), |t| get_in(t, key))
    }
    fn iter_after<'a>(&'a self, after: Option<&[u8]>) -> Result<BaseIter<'a>, KvError> {
        let Some(t) = &self.0 else {
            return Ok(Box::new(std::iter::empty()));
        };
        let range = match after {
            Some(a) => t.range::<&[u8]>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
            None => t.range::<&[u8]>(..),
        }
        .map_err(kv_err)?;
        Ok(Box::new(range.map(|row| {
            let (k, v) = row.map_err(kv_err)?;
            Ok((k.value().to_vec(), Record::decode(v.value()).map_err(kv_err)?))
        })))
    }
    fn len(&self) -> Result<u64, KvError> {
        self.0.as_ref().map_or(Ok(0), |t| t.len().map_err(kv_err))
    }
}

/// The table, opened on first use: most writes never need it.
struct LazyTable<'a> {
    machine: &'a KvMachine,
    state: &'a Db,
    table: OnceCell<Result<Table, KvError>>,
}

impl Base for LazyTable<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, KvError> {
        self.open()?.get(key)
    }
    fn iter_after<'b>(&'b self, after: Option<&[u8]>) -> Result<BaseIter<'b>, KvError> {
        self.open()?.iter_after(after)
    }
    fn len(&self) -> Result<u64, KvError> {
        self.open()?.len()
    }
}

impl LazyTable<'_> {
    fn open(&self) -> Result<&Table, KvError> {
        self.table
            .get_or_init(|| {
                let txn = self.state.read().map_err(kv_err)?;
                self.machine.table(&txn).map_err(KvError)
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// The machine's data for applying: writes go to the active layer.
struct WriteView<'a> {
    layers: &'a mut Layers,
    base: LazyTable<'a>,
}

impl KvStore for WriteView<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, KvError> {
        overlay::get(&self.layers.stack(), &self.base, key)
    }
    fn put(&mut self, key: &[u8], rec: &Record) -> Result<(), KvError> {
        self.layers.active.put(key, Some(rec.clone()));
        Ok(())
    }
    fn delete(&mut self, key: &[u8]) -> Result<bool, KvError> {
        let existed = self.get(key)?.is_some();
        self.layers.active.put(key, None);
        Ok(existed)
    }
    fn scan(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Record)>, KvError> {
        overlay::scan(&self.layers.stack(), &self.base, after, limit)
    }
    fn clear(&mut self) -> Result<u64, KvError> {
        let n = self.len()?;
        self.layers.active.clear();
        Ok(n)
    }
    fn len(&self) -> Result<u64, KvError> {
        overlay::len(&self.layers.stack(), &self.base)
    }
}

/// The machine's data for reading.
struct ReadView<'a> {
    stack: Vec<&'a Layer>,
    base: Table,
}

fn read_only() -> KvError {
    KvError("write on a read-only view".into())
}

impl KvStore for ReadView<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, KvError> {
        overlay::get(&self.stack, &self.base, key)
    }
    fn put(&mut self, _: &[u8], _: &Record) -> Result<(), KvError> {
        Err(read_only())
    }
    fn delete(&mut self, _: &[u8]) -> Result<bool, KvError> {
        Err(read_only())
    }
    fn scan(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Record)>, KvError> {
        overlay::scan(&self.stack, &self.base, after, limit)
    }
    fn clear(&mut self) -> Result<u64, KvError> {
        Err(read_only())
    }
    fn len(&self) -> Result<u64, KvError> {
        overlay::len(&self.stack, &self.base)
    }
}

impl KvMachine {
    pub fn new(group: &str) -> Self {
        Self { table: format!("kv/{group}"), layers: RwLock::default() }
    }

    fn def(&self) -> Def<'_> {
        TableDefinition::new(&self.table)
    }

    fn table(&self, txn: &ReadTransaction) -> Result<Table, String> {
        match txn.open_table(self.def()) {
            Ok(t) => Ok(Table(Some(t))),
            Err(TableError::TableDoesNotExist(_)) => Ok(Table(None)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Run `f` on a view of the latest applied state on this replica.
    fn with_view<R>(
        &self,
        storage: &Storage,
        f: impl FnOnce(&ReadView) -> Result<R, KvError>,
    ) -> Result<R, StoreError> {
        let layers = self.layers.read().expect("layers lock");
        // The table is opened after the layers are held: a flush that
        // commits in between only moves data the frozen layer still shows.
        let txn = storage.state().read()?;
        let view = ReadView { stack: layers.stack(), base: self.table(&txn).map_err(StoreError::Db)? };
        f(&view).map_err(|e| StoreError::Db(e.0))
    }

    /// Evaluate a read against the latest applied state on this replica.
    pub fn read(&self, storage: &Storage, op: &ReadOp, now_ms: u64) -> Result<Reply, StoreError> {
        self.with_view(storage, |view| engine::read(op, now_ms, view))
    }

    /// Number of stored records (expired ones included), for status pages.
    pub fn stored_keys(&self, storage: &Storage) -> Result<u64, StoreError> {
        self.with_view(storage, |view| view.len())
    }
}

impl Machine for KvMachine {
    fn apply(&self, state: &Db, now_ms: u64, body: &[u8]) -> Result<Vec<u8>, String> {
        let replies = match decode::<Vec<WriteOp>>(body) {
            Ok(ops) => {
                let mut layers = self.layers.write().expect("layers lock");
                let mut view =
                    WriteView { layers: &mut layers, base: LazyTable { machine: self, state, table: OnceCell::new() } };
                let mut out = Vec::with_capacity(ops.len());
                for op in &ops {
                    out.push(engine::apply(op, now_ms, &mut view).map_err(|e| e.0)?);
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

    fn unflushed_bytes(&self) -> usize {
        self.layers.read().expect("layers lock").active.bytes
    }

    fn freeze(&self) -> FlushJob {
        let frozen = {
            let mut layers = self.layers.write().expect("layers lock");
            debug_assert!(layers.frozen.is_none(), "a flush is already under way");
            let frozen = Arc::new(std::mem::take(&mut layers.active));
            layers.frozen = Some(frozen.clone());
            frozen
        };
        let table = self.table.clone();
        Box::new(move |txn: &WriteTransaction| {
            let mut t = txn.open_table::<&[u8], &[u8]>(TableDefinition::new(&table)).map_err(|e| e.to_string())?;
            if frozen.cleared {
                t.retain(|_, _| false).map_err(|e| e.to_string())?;
            }
            for (key, rec) in &frozen.entries {
                match rec {
                    Some(rec) => t.insert(key.as_slice(), rec.encode().as_slice()).map(drop),
                    None => t.remove(key.as_slice()).map(drop),
                }
                .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    }

    fn flushed(&self, ok: bool) {
        if ok {
            self.layers.write().expect("layers lock").frozen = None;
        }
    }

    fn export(&self, txn: &ReadTransaction) -> Result<Vec<u8>, String> {
        let table = self.table(txn)?;
        let mut rows: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        if let Some(t) = &table.0 {
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

    fn reload(&self, _state: &Db) -> Result<(), String> {
        *self.layers.write().expect("layers lock") = Layers::default();
        Ok(())
    }
}
