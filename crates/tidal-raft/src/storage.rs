//! The node-wide redb database and its writer: one thread that owns every
//! write transaction and commits many callers' work together.
//!
//! ```text
//!  PRG a append ─┐                          ┌─> a: LogFlushed
//!  PRG b append ─┼─> queue ─> writer thread ─┼─> b: LogFlushed
//!  PRG a apply  ─┘   (drain all queued)      └─> a: applied replies
//!                    one transaction, one fsync if any job needs it
//! ```
//!
//! redb has one writer at a time; funnelling every write through this thread
//! turns that limit into group commit: under load one fsync carries the log
//! appends of many PRGs and clients. State-machine applies do not need their
//! own fsync (the log is durable and replays on restart), so a batch holding
//! only applies commits with `Durability::None` and is made durable by the
//! next durable commit.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

/// Raft log entries: (group, index) -> encoded entry.
pub(crate) const LOG: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("raft_log");
/// Small per-group values: (group, name) -> encoded value.
pub(crate) const META: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("raft_meta");
/// The latest snapshot of each group: group -> encoded snapshot.
pub(crate) const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_snapshot");
/// Groups this node hosts and the epoch they were placed at.
pub(crate) const GROUPS: TableDefinition<&str, u64> = TableDefinition::new("groups");

/// Errors from the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage: {0}")]
    Db(String),
    #[error("storage writer stopped")]
    WriterStopped,
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn db(e: impl std::fmt::Display) -> Self {
        StoreError::Db(e.to_string())
    }
}

/// One caller's share of a write transaction.
trait Work: Send {
    fn run(&mut self, txn: &WriteTransaction) -> Result<(), String>;
    /// Called exactly once with the batch's outcome.
    fn finish(self: Box<Self>, outcome: Result<(), String>);
}

struct FnWork<R, F, D> {
    run: Option<F>,
    value: Option<R>,
    done: D,
}

impl<R, F, D> Work for FnWork<R, F, D>
where
    R: Send,
    F: FnOnce(&WriteTransaction) -> Result<R, String> + Send,
    D: FnOnce(Result<R, String>) + Send,
{
    fn run(&mut self, txn: &WriteTransaction) -> Result<(), String> {
        let f = self.run.take().expect("a job runs once");
        self.value = Some(f(txn)?);
        Ok(())
    }

    fn finish(self: Box<Self>, outcome: Result<(), String>) {
        let this = *self;
        let result = outcome.and_then(|()| this.value.ok_or_else(|| "batch aborted before this job ran".to_string()));
        (this.done)(result);
    }
}

struct Job {
    durable: bool,
    work: Box<dyn Work>,
}

/// Handle to the node-wide writer; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Queue `run` to execute inside the next write transaction. When that
    /// transaction has committed (or failed), `done` receives the outcome:
    /// `run`'s own value, or the error of any job in the batch or of the
    /// commit. `durable` jobs are on disk when `done` hears `Ok`.
    pub fn submit<R, F, D>(&self, durable: bool, run: F, done: D)
    where
        R: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<R, String> + Send + 'static,
        D: FnOnce(Result<R, String>) + Send + 'static,
    {
        let work = Box::new(FnWork { run: Some(run), value: None, done });
        if let Err(mpsc::error::SendError(job)) = self.tx.send(Job { durable, work }) {
            job.work.finish(Err("storage writer stopped".into()));
        }
    }

    /// Run `run` in the next write transaction and wait for its commit.
    pub async fn call<R, F>(&self, durable: bool, run: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<R, String> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.submit(durable, run, move |r| {
            let _ = tx.send(r);
        });
        rx.await.map_err(|_| StoreError::WriterStopped)?.map_err(StoreError::Db)
    }
}

/// The node's database plus its writer.
pub struct Storage {
    db: Arc<Database>,
    writer: Writer,
}

impl Storage {
    /// Open (or create) `path` and start the writer thread.
    pub fn open(path: &Path) -> Result<Arc<Self>, StoreError> {
        let db = Arc::new(Database::create(path).map_err(StoreError::db)?);
        {
            let txn = db.begin_write().map_err(StoreError::db)?;
            txn.open_table(LOG).map_err(StoreError::db)?;
            txn.open_table(META).map_err(StoreError::db)?;
            txn.open_table(SNAPSHOT).map_err(StoreError::db)?;
            txn.open_table(GROUPS).map_err(StoreError::db)?;
            txn.commit().map_err(StoreError::db)?;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let wdb = db.clone();
        std::thread::Builder::new()
            .name("tidal-writer".into())
            .spawn(move || writer_loop(wdb, rx))
            .map_err(StoreError::db)?;
        Ok(Arc::new(Self { db, writer: Writer { tx } }))
    }

    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    pub fn read(&self) -> Result<ReadTransaction, StoreError> {
        self.db.begin_read().map_err(StoreError::db)
    }

    /// Groups recorded as hosted here, with the epoch of their placement.
    pub fn hosted_groups(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let txn = self.read()?;
        let t = txn.open_table(GROUPS).map_err(StoreError::db)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(StoreError::db)? {
            let (k, v) = row.map_err(StoreError::db)?;
            out.push((k.value().to_string(), v.value()));
        }
        Ok(out)
    }
}

/// Upper bound on jobs per transaction, so one commit stays bounded.
const MAX_BATCH: usize = 4096;

fn writer_loop(db: Arc<Database>, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(256);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        commit_batch(&db, &mut batch);
    }
}

fn commit_batch(db: &Database, batch: &mut Vec<Job>) {
    let durable = batch.iter().any(|j| j.durable);
    let outcome = run_batch(db, batch, durable);
    if let Err(e) = &outcome {
        tracing::error!(error = %e, jobs = batch.len(), "storage batch failed");
    }
    for job in batch.drain(..) {
        job.work.finish(outcome.clone());
    }
}

fn run_batch(db: &Database, batch: &mut [Job], durable: bool) -> Result<(), String> {
    let mut txn = db.begin_write().map_err(|e| e.to_string())?;
    if !durable {
        txn.set_durability(Durability::None).map_err(|e| e.to_string())?;
    }
    for job in batch.iter_mut() {
        if let Err(e) = job.work.run(&txn) {
            let _ = txn.abort();
            return Err(e);
        }
    }
    txn.commit().map_err(|e| e.to_string())
}
