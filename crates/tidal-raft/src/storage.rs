//! The node's two redb databases and their writers.
//!
//! ```text
//!  log appends, votes ──> log writer ───> log.redb    (durable: fsync per batch)
//!  applies, snapshots ──> state writer ─> state.redb  (checkpointed: fsync every
//!                                                      STATE_CHECKPOINT, or when a
//!                                                      snapshot needs it)
//! ```
//!
//! The Raft log must be on disk before an entry counts toward a quorum, so
//! every batch of appends is one durable commit of `log.redb`. State
//! machines need no fsync of their own: an entry is applied only after it is
//! durable in the log, and a restarted group re-applies from the applied
//! index `state.redb` holds. Keeping the state machines in a second file
//! means a log commit writes only the log's pages: the pages that random
//! keys dirty in the key-value tables reach the disk once per checkpoint,
//! however many writes changed them in between. Each file has its own
//! writer thread ([`crate::writer`]), so applies never wait behind a log
//! fsync.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

pub use crate::writer::{CommitDelay, Writer, WriterRuntime, WriterStats};

/// Raft log entries (log file): (group, index) -> encoded entry.
pub(crate) const LOG: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("raft_log");
/// Small per-group values: (group, name) -> encoded value. The log file
/// holds `vote` and `purged`; the state file `applied`, `membership` and
/// `committed`.
pub const META: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("raft_meta");
/// The latest snapshot of each group (state file): group -> encoded snapshot.
pub(crate) const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_snapshot");
/// Groups this node hosts and the epoch they were placed at (log file).
pub(crate) const GROUPS: TableDefinition<&str, u64> = TableDefinition::new("groups");

/// Default longest time applied state stays only in memory: a crash loses
/// at most this much applying work, which the group redoes from its durable
/// log. A checkpoint holds the state writer while it flushes the pages
/// dirtied since the last one (tens of ms with a hundred thousand random
/// keys), so its interval decides how often applies stall: once a second
/// put the stall in the 64-client p99, every 5 s it is in the p99.9.
pub const STATE_CHECKPOINT: Duration = Duration::from_millis(5000);

/// Default page cache of both files together (redb's own default is 1 GiB
/// per file). Small on purpose: redb keeps the pages of a commit without
/// fsync in its own write buffer, up to half the cache, until a durable
/// commit or an eviction writes them, so the cache bounds what each state
/// checkpoint writes and waits for (96 MiB made checkpoints of 300–550 ms,
/// every node at once; 16 MiB none over 250 ms). Reads past the cache come
/// from the operating system's page cache, at no measured cost.
pub const DEFAULT_STORAGE_CACHE_BYTES: usize = 16 << 20;

/// How the node's storage is sized and paced.
#[derive(Debug, Clone, Copy)]
pub struct StorageOptions {
    /// Page caches of both files together: a quarter for the log, whose
    /// reads are mostly of recent entries, the rest for the state machines.
    pub cache_bytes: usize,
    /// Longest time between durable commits of the state file.
    pub state_checkpoint: Duration,
    /// How often the state file's dirty pages are flushed between them.
    pub state_writeback: Duration,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            cache_bytes: DEFAULT_STORAGE_CACHE_BYTES,
            state_checkpoint: STATE_CHECKPOINT,
            state_writeback: STATE_WRITEBACK,
        }
    }
}

/// The file name a single-file data directory used; such a directory is
/// refused rather than silently started empty.
const OLD_SINGLE_FILE: &str = "tidal.redb";

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

/// One redb database and the writer that owns its write transactions.
pub struct Db {
    db: Arc<Database>,
    writer: Writer,
    stats: Arc<WriterStats>,
}

impl Db {
    /// Create `db`'s tables with `init` and start its writer thread `name`.
    fn start(
        name: &str,
        runtime: WriterRuntime,
        db: Database,
        init: fn(&WriteTransaction) -> Result<(), redb::TableError>,
        checkpoint: Option<Duration>,
    ) -> Result<Self, StoreError> {
        let db = Arc::new(db);
        let txn = db.begin_write().map_err(StoreError::db)?;
        init(&txn).map_err(StoreError::db)?;
        txn.commit().map_err(StoreError::db)?;
        let stats = Arc::new(WriterStats::default());
        let writer = Writer::spawn(name, runtime, db.clone(), stats.clone(), checkpoint).map_err(StoreError::db)?;
        Ok(Self { db, writer, stats })
    }

    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    pub fn read(&self) -> Result<ReadTransaction, StoreError> {
        self.db.begin_read().map_err(StoreError::db)
    }

    /// Counters of the writer, for metrics: jobs per commit is the group
    /// commit factor.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }
}

/// The node's storage: the Raft logs in one file, the state machines in
/// another (see the module docs).
pub struct Storage {
    log: Db,
    state: Db,
    /// Writes the state file's pages out between checkpoints (file-backed
    /// storage only); stops when the storage is dropped.
    _writeback: Option<Writeback>,
    /// Held by whichever group's log is deleting a purge's chunk in the
    /// background, and through its pause after it: one at a time per node.
    purge_turn: tokio::sync::Mutex<()>,
}

/// How often the state file's dirty pages go to disk between checkpoints.
pub const STATE_WRITEBACK: Duration = Duration::from_millis(200);

/// A thread that flushes a file's dirty pages every so often, through a
/// handle of its own.
///
/// The state writer's commits do not fsync: the pages they change stay
/// dirty in the page cache until a checkpoint's durable commit flushes them
/// all at once. With random keys that is tens of megabytes every
/// [`STATE_CHECKPOINT`], and the disk takes it as one burst: the log's
/// fsyncs, which every Raft append waits for, queue behind it (on a
/// virtual disk a flush is the whole device's), and every group on the
/// node stalls for up to a second. Flushed a little at a time, each
/// checkpoint finds little left and the log's fsyncs never wait behind a
/// burst. Writing pages out earlier than a commit asks changes nothing
/// redb relies on: the kernel may write any dirty page at any time.
struct Writeback {
    _stop: std::sync::mpsc::Sender<()>,
}

impl Writeback {
    fn spawn(path: &Path, every: Duration) -> Result<Self, StoreError> {
        let file = std::fs::File::open(path).map_err(StoreError::db)?;
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("state-writeback".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    if let Err(e) = file.sync_data() {
                        tracing::warn!(error = %e, "state file writeback failed");
                    }
                }
            })
            .map_err(StoreError::db)?;
        Ok(Self { _stop: stop })
    }
}

impl Storage {
    /// Open (or create) the two files in `dir` and start their writers.
    pub fn open(dir: &Path, options: StorageOptions) -> Result<Arc<Self>, StoreError> {
        if dir.join(OLD_SINGLE_FILE).exists() {
            return Err(StoreError::Db(format!(
                "{} holds {OLD_SINGLE_FILE}, the single-file layout of an older tidal; this version keeps \
                 log.redb and state.redb: start it on an empty data directory",
                dir.display()
            )));
        }
        let open = |name: &str, cache: usize| {
            Database::builder().set_cache_size(cache).create(dir.join(name)).map_err(StoreError::db)
        };
        let cache = options.cache_bytes;
        let log = open("log.redb", cache / 4)?;
        let state = open("state.redb", cache - cache / 4)?;
        let writeback = Writeback::spawn(&dir.join("state.redb"), options.state_writeback)?;
        Self::with_databases(log, state, options.state_checkpoint, WriterRuntime::Thread, Some(writeback))
    }

    /// Databases that live only in memory (tests).
    pub fn in_memory() -> Result<Arc<Self>, StoreError> {
        use redb::backends::InMemoryBackend;
        Self::on_backends(InMemoryBackend::new(), InMemoryBackend::new(), WriterRuntime::Thread)
    }

    /// Databases on the given redb backends, with writers on `runtime`: a
    /// simulation passes backends that model a disk (and what a crash
    /// loses) and runs the writers as tasks of the simulated node.
    pub fn on_backends(
        log: impl redb::StorageBackend,
        state: impl redb::StorageBackend,
        runtime: WriterRuntime,
    ) -> Result<Arc<Self>, StoreError> {
        let log = Database::builder().create_with_backend(log).map_err(StoreError::db)?;
        let state = Database::builder().create_with_backend(state).map_err(StoreError::db)?;
        Self::with_databases(log, state, STATE_CHECKPOINT, runtime, None)
    }

    fn with_databases(
        log: Database,
        state: Database,
        checkpoint: Duration,
        runtime: WriterRuntime,
        writeback: Option<Writeback>,
    ) -> Result<Arc<Self>, StoreError> {
        let log = Db::start(
            "log-writer",
            runtime.clone(),
            log,
            |txn| {
                txn.open_table(LOG)?;
                txn.open_table(META)?;
                txn.open_table(GROUPS)?;
                Ok(())
            },
            None,
        )?;
        let state = Db::start(
            "state-writer",
            runtime,
            state,
            |txn| {
                txn.open_table(META)?;
                txn.open_table(SNAPSHOT)?;
                Ok(())
            },
            Some(checkpoint),
        )?;
        Ok(Arc::new(Self { log, state, _writeback: writeback, purge_turn: tokio::sync::Mutex::new(()) }))
    }

    /// Raft logs, votes and the groups hosted here.
    pub fn log(&self) -> &Db {
        &self.log
    }

    /// The background purges' turn (see [`crate::log_store`]).
    pub(crate) fn purge_turn(&self) -> &tokio::sync::Mutex<()> {
        &self.purge_turn
    }

    /// State machines, their applied index and snapshots.
    pub fn state(&self) -> &Db {
        &self.state
    }

    /// Make everything applied so far durable (clean shutdown, so a restart
    /// need not re-apply).
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        self.state.writer.call(true, |_| Ok(())).await
    }

    /// Groups recorded as hosted here, with the epoch of their placement.
    pub fn hosted_groups(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let txn = self.log.read()?;
        let t = txn.open_table(GROUPS).map_err(StoreError::db)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(StoreError::db)? {
            let (k, v) = row.map_err(StoreError::db)?;
            out.push((k.value().to_string(), v.value()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use tokio::sync::oneshot;

    use super::*;

    const T: TableDefinition<u64, u64> = TableDefinition::new("t");

    type Held = tokio::task::JoinHandle<Result<(), StoreError>>;

    /// Park the writer inside a transaction until the sender is used, so
    /// jobs submitted meanwhile queue up behind it.
    async fn hold_writer(s: &Storage) -> (std::sync::mpsc::Sender<()>, Held) {
        let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
        let w = s.log().writer().clone();
        let held = tokio::spawn(async move {
            w.call(false, move |_txn| {
                gate_rx.recv().map_err(|e| e.to_string())?;
                Ok(())
            })
            .await
        });
        while s.log().stats().commits.load(Ordering::Relaxed) == 0 {
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
            s.log().writer().submit(
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
        assert_eq!(s.log().stats().commits.load(Ordering::Relaxed), 2);
        assert_eq!(s.log().stats().jobs.load(Ordering::Relaxed), 101);
        let txn = s.log().read().unwrap();
        let t = txn.open_table(T).unwrap();
        assert_eq!(t.get(42).unwrap().unwrap().value(), 84);
    }

    #[tokio::test]
    async fn a_failing_job_fails_its_whole_batch_and_writes_nothing() {
        let s = Storage::in_memory().unwrap();
        let (gate_tx, first) = hold_writer(&s).await;
        // `submit` queues at once, so both jobs wait behind the gate together.
        let (good_tx, good) = oneshot::channel();
        s.log().writer().submit(
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
        s.log().writer().submit(
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
        let txn = s.log().read().unwrap();
        assert!(txn.open_table(T).is_err() || txn.open_table(T).unwrap().get(1).unwrap().is_none());
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let p = std::env::temp_dir().join(format!("tidal-storage-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn put(db: &Db, k: u64, v: u64) -> impl std::future::Future<Output = Result<(), StoreError>> + 'static {
        let w = db.writer().clone();
        async move {
            w.call(false, move |txn| {
                txn.open_table(T).map_err(|e| e.to_string())?.insert(k, v).map_err(|e| e.to_string())?;
                Ok(())
            })
            .await
        }
    }

    /// Wait (bounded) until `path` can be opened again, i.e. every writer
    /// thread holding it has finished.
    async fn reopen(path: &Path) -> Database {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match Database::create(path) {
                Ok(db) => return db,
                Err(_) if std::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(e) => panic!("{} did not reopen: {e}", path.display()),
            }
        }
    }

    #[tokio::test]
    async fn the_state_writer_checkpoints_without_a_durable_job() {
        let s = Storage::in_memory().unwrap();
        put(s.state(), 1, 1).await.unwrap();
        assert_eq!(s.state().stats().durable_commits.load(Ordering::Relaxed), 0);
        // Nothing else is queued: the writer makes the applied state
        // durable on its own once the interval has passed.
        let deadline = std::time::Instant::now() + STATE_CHECKPOINT * 5;
        while s.state().stats().durable_commits.load(Ordering::Relaxed) == 0 {
            assert!(std::time::Instant::now() < deadline, "no checkpoint within {:?}", STATE_CHECKPOINT * 5);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The log writer has no interval: non-durable work stays so until
        // a durable job carries it.
        put(s.log(), 1, 1).await.unwrap();
        tokio::time::sleep(STATE_CHECKPOINT * 2).await;
        assert_eq!(s.log().stats().durable_commits.load(Ordering::Relaxed), 0);
    }

    /// Writers as tasks (simulation): they batch what was queued before
    /// they ran, and checkpoint on the runtime's clock, here paused, so the
    /// interval passes without any real waiting.
    #[tokio::test(start_paused = true)]
    async fn task_writers_batch_and_checkpoint_on_the_runtime_clock() {
        use redb::backends::InMemoryBackend;
        let s = Storage::on_backends(
            InMemoryBackend::new(),
            InMemoryBackend::new(),
            WriterRuntime::Task(Default::default()),
        )
        .unwrap();
        let puts: Vec<_> = (0..50).map(|k| tokio::spawn(put(s.state(), k, k))).collect();
        for p in puts {
            p.await.unwrap().unwrap();
        }
        assert_eq!(s.state().stats().jobs.load(Ordering::Relaxed), 50);
        let commits = s.state().stats().commits.load(Ordering::Relaxed);
        assert!(commits < 50, "{commits} commits for 50 jobs queued together");
        assert_eq!(s.state().stats().durable_commits.load(Ordering::Relaxed), 0);
        let started = std::time::Instant::now();
        tokio::time::sleep(STATE_CHECKPOINT + Duration::from_millis(1)).await;
        tokio::task::yield_now().await;
        assert_eq!(s.state().stats().durable_commits.load(Ordering::Relaxed), 1);
        assert!(started.elapsed() < STATE_CHECKPOINT, "the checkpoint waited on the OS clock");
        let txn = s.state().read().unwrap();
        assert_eq!(txn.open_table(T).unwrap().get(49).unwrap().unwrap().value(), 49);
    }

    /// A slowed-down disk (simulation): each commit takes the delay, in the
    /// runtime's time, and what queues meanwhile joins the commit.
    #[tokio::test(start_paused = true)]
    async fn a_slow_disk_delays_each_commit_and_batches_what_queues_meanwhile() {
        use redb::backends::InMemoryBackend;
        let delay = CommitDelay::default();
        let s =
            Storage::on_backends(InMemoryBackend::new(), InMemoryBackend::new(), WriterRuntime::Task(delay.clone()))
                .unwrap();
        let t0 = tokio::time::Instant::now();
        put(s.log(), 1, 1).await.unwrap();
        assert!(t0.elapsed() < Duration::from_millis(1), "no delay until one is set");
        delay.set(Duration::from_millis(300));
        let t0 = tokio::time::Instant::now();
        let commits = s.log().stats().commits.load(Ordering::Relaxed);
        let first = tokio::spawn(put(s.log(), 2, 2));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let puts: Vec<_> = (3..10).map(|k| tokio::spawn(put(s.log(), k, k))).collect();
        first.await.unwrap().unwrap();
        for p in puts {
            p.await.unwrap().unwrap();
        }
        assert!(t0.elapsed() >= Duration::from_millis(300), "{:?}", t0.elapsed());
        assert_eq!(
            s.log().stats().commits.load(Ordering::Relaxed) - commits,
            1,
            "the later puts joined the slow commit"
        );
        delay.set(Duration::ZERO);
        let t0 = tokio::time::Instant::now();
        put(s.log(), 10, 10).await.unwrap();
        assert!(t0.elapsed() < Duration::from_millis(1));
    }

    #[tokio::test]
    async fn checkpoint_makes_applied_state_durable_and_a_stopped_writer_flushes_it() {
        let dir = TempDir::new("checkpoint");
        {
            let s = Storage::open(&dir.0, StorageOptions::default()).unwrap();
            put(s.state(), 1, 10).await.unwrap();
            s.checkpoint().await.unwrap();
            assert_eq!(s.state().stats().durable_commits.load(Ordering::Relaxed), 1);
            put(s.state(), 2, 20).await.unwrap();
            // Dropping the storage stops both writers; the state writer
            // commits what is pending durably before it exits.
        }
        let db = reopen(&dir.0.join("state.redb")).await;
        let txn = db.begin_read().unwrap();
        let t = txn.open_table(T).unwrap();
        assert_eq!(t.get(1).unwrap().unwrap().value(), 10);
        assert_eq!(t.get(2).unwrap().unwrap().value(), 20);
    }

    #[test]
    fn a_single_file_data_directory_is_refused() {
        let dir = TempDir::new("legacy");
        std::fs::write(dir.0.join(OLD_SINGLE_FILE), b"").unwrap();
        let err = Storage::open(&dir.0, StorageOptions::default()).err().expect("refused").to_string();
        assert!(err.contains("tidal.redb"), "{err}");
        assert!(!dir.0.join("log.redb").exists());
    }
}
