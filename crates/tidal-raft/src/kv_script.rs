//! A script's commands at its PRG's leader, before anything is proposed.
//!
//! A script (EVAL) runs on the leader against the applied state. Each of
//! its commands sees the writes of the ones before it, which go to a layer
//! of the script's own, never to the state itself. When the script ends,
//! what it wrote becomes one write, [`WriteOp::Script`], proposed like any
//! other: every replica applies the same writes at the same instant, so
//! none runs the script (the leader's answer is the script's).
//!
//! The write names every key the script touched with the version it saw;
//! a key changed in between (a write already on its way when the script
//! began) makes it apply nothing, and the leader runs the script again.

use std::cell::OnceCell;
use std::collections::HashMap;

use tidal_core::kv::{self as engine, Reply, TxOp, Watch, WriteOp};

use super::{refusal, KvMachine, Layer, LazyTable, Target, View, WriteView};
use crate::kv_entry::Outcome;
use crate::storage::{Storage, StoreError};

/// One run of a script: what it wrote so far, and the keys it touched.
pub struct ScriptRun {
    layer: Layer,
    at_ms: u64,
    writes: Vec<WriteOp>,
    /// Each key touched, with the version it had before the script.
    seen: Vec<(Vec<u8>, u64)>,
    /// Where each key of `seen` is.
    index: HashMap<Vec<u8>, usize>,
    /// A command has named a key (not only WATCH).
    touched: bool,
}

impl ScriptRun {
    /// A run that sees the state at `at_ms` throughout.
    pub fn new(at_ms: u64) -> Self {
        Self {
            layer: Layer::default(),
            at_ms,
            writes: Vec::new(),
            seen: Vec::new(),
            index: HashMap::new(),
            touched: false,
        }
    }

    /// The instant the script sees.
    pub fn at_ms(&self) -> u64 {
        self.at_ms
    }

    /// Whether a command of the script has changed something.
    pub fn wrote(&self) -> bool {
        !self.writes.is_empty()
    }

    /// Keys whose versions were read before the script (a transaction's
    /// WATCH): its write applies only if they still hold.
    pub fn expect(&mut self, keys: Vec<(Vec<u8>, u64)>) {
        for (k, v) in keys {
            self.see(k, v);
        }
    }

    /// Whether a command of the script has named a key.
    pub fn touched(&self) -> bool {
        self.touched
    }

    fn see(&mut self, key: Vec<u8>, version: u64) {
        if !self.index.contains_key(&key) {
            self.index.insert(key.clone(), self.seen.len());
            self.seen.push((key, version));
        }
    }

    /// What the script wrote, as the one write that applies it in `group`;
    /// `None` when it wrote nothing.
    pub fn into_write(self, group: &str) -> Option<WriteOp> {
        (!self.writes.is_empty()).then(|| WriteOp::Script {
            watch: Watch { prg: group.to_string(), keys: self.seen },
            at_ms: self.at_ms,
            ops: self.writes,
        })
    }
}

impl KvMachine {
    /// Whether every key `run` touched still has the version it saw (a
    /// script that wrote nothing answers from reads made one at a time).
    pub fn script_unchanged(&self, storage: &Storage, run: &ScriptRun) -> Result<bool, StoreError> {
        if run.seen.is_empty() {
            return Ok(true);
        }
        let keys: Vec<Vec<u8>> = run.seen.iter().map(|(k, _)| k.clone()).collect();
        let now = self
            .with_view(storage, |view, _| engine::read(&tidal_core::kv::ReadOp::Versions { keys }, run.at_ms, view))?;
        let Reply::Array(now) = now else { return Err(StoreError::Db("versions: not an array".into())) };
        Ok(run.seen.iter().zip(&now).all(|((_, was), is)| matches!(is, Reply::Int(v) if *v as u64 == *was)))
    }

    /// Run one command of `run`: against this replica's applied state
    /// under the script's own writes. `Ok(Err(_))` when a key's slot is not
    /// served here (nothing ran).
    pub fn script_call(&self, storage: &Storage, run: &mut ScriptRun, op: &TxOp) -> Result<Outcome, StoreError> {
        let inner = self.inner.read().expect("kv lock");
        let keys = op.keys();
        if let Some(r) = refusal(&inner.ownership, &keys, matches!(op, TxOp::Write(_))) {
            return Ok(Err(r));
        }
        run.touched |= !keys.is_empty();
        let base = || LazyTable {
            table: &self.table,
            state: storage.state(),
            purging: inner.purging.clone(),
            opened: OnceCell::new(),
        };
        let db = |e: tidal_core::kv::StoreError| StoreError::Db(e.0);
        // A key's version before the script, the first time it is touched.
        let fresh: Vec<Vec<u8>> = {
            let mut fresh: Vec<Vec<u8>> = Vec::new();
            for k in keys {
                if !run.index.contains_key(k) && !fresh.iter().any(|f| f == k) {
                    fresh.push(k.to_vec());
                }
            }
            fresh
        };
        if !fresh.is_empty() {
            let base = base();
            let view = View { stack: inner.layers.stack(), base: &base, ownership: &inner.ownership, scan_slots: None };
            let versions = engine::read(&tidal_core::kv::ReadOp::Versions { keys: fresh.clone() }, run.at_ms, &view)
                .map_err(db)?;
            let Reply::Array(versions) = versions else {
                return Err(StoreError::Db("versions of a script's keys: not an array".into()));
            };
            for (k, v) in fresh.into_iter().zip(versions) {
                let Reply::Int(v) = v else { return Err(StoreError::Db("a key's version: not an integer".into())) };
                run.see(k, v as u64);
            }
        }
        let mut view =
            WriteView { target: Target::Script { inner: &inner, layer: &mut run.layer }, base: base(), writes: 0 };
        let reply = match op {
            TxOp::Read(r) => engine::read(r, run.at_ms, &view).map_err(db)?,
            TxOp::Write(w) => {
                let reply = engine::apply(w, run.at_ms, &mut view).map_err(db)?;
                // A refused command changed nothing: it need not apply.
                if !reply.is_error() {
                    run.writes.push(w.clone());
                }
                reply
            }
        };
        Ok(Ok(reply))
    }
}
