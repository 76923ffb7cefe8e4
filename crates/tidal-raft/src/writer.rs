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
//!
//! A node runs each writer on a thread of its own ([`WriterRuntime::Thread`]).
//! Under simulation it runs as a task of the caller's runtime instead
//! ([`WriterRuntime::Task`]): commits then happen at simulated instants, in
//! an order the simulation decides, and a crashed node's writer stops with
//! its runtime.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc as tmpsc;

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

/// Where a writer runs.
#[derive(Debug, Clone, Default)]
pub enum WriterRuntime {
    /// A thread of its own: commits never hold up the async runtime.
    #[default]
    Thread,
    /// A task of the runtime that starts it, committing inline (simulation,
    /// on in-memory databases), each commit taking as long as the
    /// [`CommitDelay`] says (a slow disk, under simulation).
    Task(CommitDelay),
}

/// How long each commit of a task writer takes, in the runtime's time:
/// zero unless a simulation slows the disk down. Shared: a change applies
/// from the next commit on.
#[derive(Debug, Clone, Default)]
pub struct CommitDelay(Arc<AtomicU64>);

impl CommitDelay {
    pub fn set(&self, delay: Duration) {
        self.0.store(delay.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn get(&self) -> Duration {
        Duration::from_micros(self.0.load(Ordering::Relaxed))
    }
}

/// Handle to a database's writer; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: Queue,
}

#[derive(Clone)]
enum Queue {
    Thread(mpsc::Sender<Job>),
    Task(tmpsc::UnboundedSender<Job>),
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

/// A commit that takes this long is logged: everything queued behind it,
/// Raft appends and their answers included, waited as long.
const SLOW_COMMIT: Duration = Duration::from_millis(250);

/// Upper bound on jobs per transaction, so one commit stays bounded.
const MAX_BATCH: usize = 4096;

impl Writer {
    /// Start the writer thread of `db`. With `checkpoint_every`, non-durable
    /// commits are made durable at most that long after the first of them.
    pub(crate) fn spawn(
        name: &str,
        runtime: WriterRuntime,
        db: Arc<Database>,
        stats: Arc<WriterStats>,
        checkpoint_every: Option<Duration>,
    ) -> std::io::Result<Self> {
        let batcher = Batcher { db, stats, every: checkpoint_every, batch: Vec::with_capacity(256), dirty_since: None };
        match runtime {
            WriterRuntime::Thread => {
                let (tx, rx) = mpsc::channel();
                std::thread::Builder::new().name(name.into()).spawn(move || thread_loop(batcher, &rx))?;
                Ok(Self { tx: Queue::Thread(tx) })
            }
            WriterRuntime::Task(delay) => {
                let (tx, rx) = tmpsc::unbounded_channel();
                tokio::spawn(task_loop(batcher, rx, delay));
                Ok(Self { tx: Queue::Task(tx) })
            }
        }
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
        let job = Job { durable, work: Box::new(FnWork { run: Some(run), value: None, done }) };
        let refused = match &self.tx {
            Queue::Thread(tx) => tx.send(job).err().map(|e| e.0),
            Queue::Task(tx) => tx.send(job).err().map(|e| e.0),
        };
        if let Some(job) = refused {
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

/// A writer's state between batches, whichever runtime it runs on. Time is
/// passed in: the thread reads the OS clock, the task its runtime's.
struct Batcher {
    db: Arc<Database>,
    stats: Arc<WriterStats>,
    every: Option<Duration>,
    batch: Vec<Job>,
    /// When the oldest commit not yet made durable happened.
    dirty_since: Option<Instant>,
}

impl Batcher {
    /// When a checkpoint must happen even if no job arrives.
    fn due(&self) -> Option<Instant> {
        self.every.zip(self.dirty_since).map(|(every, since)| since + every)
    }

    /// Takes `first` (if any; none means the checkpoint is due) and whatever
    /// else is queued, and commits them as one batch at `now`.
    fn run(&mut self, first: Option<Job>, mut queued: impl FnMut() -> Option<Job>, now: Instant) {
        let due = self.due();
        if let Some(first) = first {
            self.batch.push(first);
            while self.batch.len() < MAX_BATCH {
                match queued() {
                    Some(j) => self.batch.push(j),
                    None => break,
                }
            }
        }
        let durable = self.batch.iter().any(|j| j.durable) || due.is_some_and(|d| now >= d);
        if commit_batch(&self.db, &mut self.batch, durable, &self.stats) {
            self.dirty_since = if durable { None } else { self.dirty_since.or(Some(now)) };
        }
    }

    /// The queue closed: make everything durable before stopping.
    fn close(mut self) {
        if self.dirty_since.is_some() {
            commit_batch(&self.db, &mut self.batch, true, &self.stats);
        }
    }
}

fn thread_loop(mut b: Batcher, rx: &mpsc::Receiver<Job>) {
    loop {
        let first = match b.due() {
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
        b.run(first, || rx.try_recv().ok(), Instant::now());
    }
    b.close();
}

async fn task_loop(mut b: Batcher, mut rx: tmpsc::UnboundedReceiver<Job>, delay: CommitDelay) {
    let now = || tokio::time::Instant::now().into_std();
    loop {
        let first = match b.due() {
            Some(due) => match tokio::time::timeout_at(due.into(), rx.recv()).await {
                Ok(Some(j)) => Some(j),
                Ok(None) => break,
                Err(_) => None,
            },
            None => match rx.recv().await {
                Some(j) => Some(j),
                None => break,
            },
        };
        // A slow disk: the commit takes this long, and what is queued
        // meanwhile joins it.
        let delay = delay.get();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        b.run(first, || rx.try_recv().ok(), now());
    }
    b.close();
}

/// Commit `batch` (possibly empty: a checkpoint) and tell every job the
/// outcome; true when the commit succeeded.
fn commit_batch(db: &Database, batch: &mut Vec<Job>, durable: bool, stats: &WriterStats) -> bool {
    stats.commits.fetch_add(1, Ordering::Relaxed);
    stats.jobs.fetch_add(batch.len() as u64, Ordering::Relaxed);
    if durable {
        stats.durable_commits.fetch_add(1, Ordering::Relaxed);
    }
    let began = std::time::Instant::now();
    let mut ran = std::time::Duration::ZERO;
    let outcome = run_batch(db, batch, durable, &mut ran);
    if let Err(e) = &outcome {
        tracing::error!(error = %e, jobs = batch.len(), "storage batch failed");
    }
    let took = began.elapsed();
    if took >= SLOW_COMMIT {
        // Time in the jobs is this process's work; the rest is redb's
        // commit, mostly waiting on the disk.
        let thread = std::thread::current();
        tracing::warn!(
            ms = took.as_millis() as u64,
            jobs_ms = ran.as_millis() as u64,
            jobs = batch.len(),
            durable,
            writer = thread.name().unwrap_or("?"),
            "slow storage commit"
        );
    }
    let ok = outcome.is_ok();
    for job in batch.drain(..) {
        job.work.finish(outcome.clone());
    }
    ok
}

/// Run `batch` in one transaction and commit it; `ran` gets the time the
/// jobs took.
fn run_batch(db: &Database, batch: &mut [Job], durable: bool, ran: &mut std::time::Duration) -> Result<(), String> {
    let mut txn = db.begin_write().map_err(|e| e.to_string())?;
    if !durable {
        txn.set_durability(Durability::None).map_err(|e| e.to_string())?;
    }
    let began = std::time::Instant::now();
    for job in batch.iter_mut() {
        if let Err(e) = job.work.run(&txn) {
            let _ = txn.abort();
            return Err(e);
        }
    }
    *ran = began.elapsed();
    txn.commit().map_err(|e| e.to_string())
}
