//! The writer of one redb database: a thread that owns every write
//! transaction of that database and commits many callers' work together.
//!
//! ```text
//!  PRG a job ─┐                           ┌─> a: done(outcome)
//!  PRG b job ─┼─> queue ─> writer thread ─┼─> b: done(outcome)
//!  PRG c job ─┘   (drain all queued)      └─> c: done(outcome)
//!                 one transaction; fsync if a job needs it or a checkpoint is due
//! ```
//!
//! redb has one writer at a time; funnelling every write through this thread
//! turns that limit into group commit: under load one fsync carries the work
//! of many PRGs and clients. A batch that holds no durable job commits with
//! `Durability::None` and becomes durable with the next durable commit. A
//! writer with a checkpoint interval makes that next durable commit itself
//! once the interval has passed, even when no job asks for one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redb::{Database, Durability, WriteTransaction};

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

/// Handle to a database's writer; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

/// What a writer has done since start.
#[derive(Default, Debug)]
pub struct WriterStats {
    /// Transactions committed (or failed).
    pub commits: AtomicU64,
    /// Of which durable (fsync).
    pub durable_commits: AtomicU64,
    /// Jobs carried by those transactions.
    pub jobs: AtomicU64,
}

/// Upper bound on jobs per transaction, so one commit stays bounded.
const MAX_BATCH: usize = 4096;

impl Writer {
    /// Start the writer thread of `db`. With `checkpoint_every`, non-durable
    /// commits are made durable at most that long after the first of them.
    pub(crate) fn spawn(
        name: &str,
        db: Arc<Database>,
        stats: Arc<WriterStats>,
        checkpoint_every: Option<Duration>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new().name(name.into()).spawn(move || writer_loop(&db, &rx, &stats, checkpoint_every))?;
        Ok(Self { tx })
    }

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
        if let Err(mpsc::SendError(job)) = self.tx.send(Job { durable, work }) {
            job.work.finish(Err("storage writer stopped".into()));
        }
    }

    /// Run `run` in the next write transaction and wait for its commit.
    pub async fn call<R, F>(&self, durable: bool, run: F) -> Result<R, crate::storage::StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<R, String> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(durable, run, move |r| {
            let _ = tx.send(r);
        });
        rx.await.map_err(|_| crate::storage::StoreError::WriterStopped)?.map_err(crate::storage::StoreError::Db)
    }
}

fn writer_loop(db: &Database, rx: &mpsc::Receiver<Job>, stats: &WriterStats, checkpoint_every: Option<Duration>) {
    let mut batch: Vec<Job> = Vec::with_capacity(256);
    // When the oldest commit not yet made durable happened.
    let mut dirty_since: Option<Instant> = None;
    loop {
        let due = checkpoint_every.zip(dirty_since).map(|(every, since)| since + every);
        let first = match due {
            Some(due) => match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
                Ok(j) => Some(j),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(j) => Some(j),
                Err(_) => break,
            },
        };
        if let Some(first) = first {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(j) => batch.push(j),
                    Err(_) => break,
                }
            }
        }
        let durable = batch.iter().any(|j| j.durable) || due.is_some_and(|d| Instant::now() >= d);
        if commit_batch(db, &mut batch, durable, stats) {
            dirty_since = if durable { None } else { dirty_since.or_else(|| Some(Instant::now())) };
        }
    }
    if dirty_since.is_some() {
        commit_batch(db, &mut batch, true, stats);
    }
}

/// Commit `batch` (possibly empty: a checkpoint) and tell every job the
/// outcome; true when the commit succeeded.
fn commit_batch(db: &Database, batch: &mut Vec<Job>, durable: bool, stats: &WriterStats) -> bool {
    stats.commits.fetch_add(1, Ordering::Relaxed);
    stats.jobs.fetch_add(batch.len() as u64, Ordering::Relaxed);
    if durable {
        stats.durable_commits.fetch_add(1, Ordering::Relaxed);
    }
    let outcome = run_batch(db, batch, durable);
    if let Err(e) = &outcome {
        tracing::error!(error = %e, jobs = batch.len(), "storage batch failed");
    }
    let ok = outcome.is_ok();
    for job in batch.drain(..) {
        job.work.finish(outcome.clone());
    }
    ok
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
