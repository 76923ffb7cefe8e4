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
use std::sync::atomic::{AtomicU64, Ordering};
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
    stats: Arc<WriterStats>,
}

/// What the writer has done since start.
#[derive(Default, Debug)]
pub struct WriterStats {
    /// Transactions committed (or failed).
    pub commits: AtomicU64,
    /// Of which durable (fsync).
    pub durable_commits: AtomicU64,
    /// Jobs carried by those transactions.
    pub jobs: AtomicU64,
}

impl Storage {
    /// Open (or create) `path` and start the writer thread.
    pub fn open(path: &Path) -> Result<Arc<Self>, StoreError> {
        Self::with_database(Database::create(path).map_err(StoreError::db)?)
    }

    /// A database that lives only in memory (tests and simulation).
    pub fn in_memory() -> Result<Arc<Self>, StoreError> {
        let db =
            Database::builder().create_with_backend(redb::backends::InMemoryBackend::new()).map_err(StoreError::db)?;
        Self::with_database(db)
    }

    fn with_database(db: Database) -> Result<Arc<Self>, StoreError> {
        let db = Arc::new(db);
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
        let stats = Arc::new(WriterStats::default());
        let wstats = stats.clone();
        std::thread::Builder::new()
            .name("tidal-writer".into())
            .spawn(move || writer_loop(wdb, rx, &wstats))
            .map_err(StoreError::db)?;
        Ok(Arc::new(Self { db, writer: Writer { tx }, stats }))
    }

    /// Counters of the writer, for metrics: jobs per commit is the group
    /// commit factor.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
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

fn writer_loop(db: Arc<Database>, mut rx: mpsc::UnboundedReceiver<Job>, stats: &WriterStats) {
    let mut batch: Vec<Job> = Vec::with_capacity(256);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats.jobs.fetch_add(batch.len() as u64, Ordering::Relaxed);
        if batch.iter().any(|j| j.durable) {
            stats.durable_commits.fetch_add(1, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;

    const T: TableDefinition<u64, u64> = TableDefinition::new("t");

    type Held = tokio::task::JoinHandle<Result<(), StoreError>>;

    /// Park the writer inside a transaction until the sender is used, so
    /// jobs submitted meanwhile queue up behind it.
    async fn hold_writer(s: &Storage) -> (std::sync::mpsc::Sender<()>, Held) {
        let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
        let w = s.writer().clone();
        let held = tokio::spawn(async move {
            w.call(false, move |_txn| {
                gate_rx.recv().map_err(|e| e.to_string())?;
                Ok(())
            })
            .await
        });
        while s.stats().commits.load(Ordering::Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        (gate_tx, held)
    }

    #[tokio::test]
    async fn jobs_queued_behind_a_commit_share_the_next_one() {
        let s = Storage::in_memory().unwrap();
        // Hold the writer inside a transaction until 100 jobs are queued.
        let (gate_tx, first) = hold_writer(&s).await;
        let mut rxs = Vec::new();
        for i in 0..100u64 {
            let (tx, rx) = oneshot::channel();
            s.writer().submit(
                true,
                move |txn| {
                    txn.open_table(T).map_err(|e| e.to_string())?.insert(i, i * 2).map_err(|e| e.to_string())?;
                    Ok(i)
                },
                move |r| {
                    let _ = tx.send(r);
                },
            );
            rxs.push(rx);
        }
        gate_tx.send(()).unwrap();
        first.await.unwrap().unwrap();
        for (i, rx) in rxs.into_iter().enumerate() {
            assert_eq!(rx.await.unwrap().unwrap(), i as u64);
        }
        // One commit for the gate, one for all 100 queued jobs.
        assert_eq!(s.stats().commits.load(Ordering::Relaxed), 2);
        assert_eq!(s.stats().jobs.load(Ordering::Relaxed), 101);
        let txn = s.read().unwrap();
        let t = txn.open_table(T).unwrap();
        assert_eq!(t.get(42).unwrap().unwrap().value(), 84);
    }

    #[tokio::test]
    async fn a_failing_job_fails_its_whole_batch_and_writes_nothing() {
        let s = Storage::in_memory().unwrap();
        let (gate_tx, first) = hold_writer(&s).await;
        // `submit` queues at once, so both jobs wait behind the gate together.
        let (good_tx, good) = oneshot::channel();
        s.writer().submit(
            true,
            |txn| {
                txn.open_table(T).map_err(|e| e.to_string())?.insert(1, 1).map_err(|e| e.to_string())?;
                Ok(())
            },
            move |r| {
                let _ = good_tx.send(r);
            },
        );
        let (bad_tx, bad) = oneshot::channel();
        s.writer().submit(
            true,
            |_txn| Err::<(), _>("disk on fire".to_string()),
            move |r| {
                let _ = bad_tx.send(r);
            },
        );
        gate_tx.send(()).unwrap();
        first.await.unwrap().unwrap();
        assert!(good.await.unwrap().is_err());
        assert_eq!(bad.await.unwrap(), Err("disk on fire".to_string()));
        let txn = s.read().unwrap();
        assert!(txn.open_table(T).is_err() || txn.open_table(T).unwrap().get(1).unwrap().is_none());
    }
}
