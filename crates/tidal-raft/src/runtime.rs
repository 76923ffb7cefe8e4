//! The async runtime every tidal Raft group runs on: tokio, with the
//! randomness openraft draws (election timeouts, tick jitter) coming from
//! a generator a simulation can seed.
//!
//! In a real node nothing is seeded and every draw comes from the
//! operating system's generator, as with openraft's own tokio runtime. A
//! simulation calls [`simulate`] on the thread that runs its hosts; from
//! then on the draws on that thread follow the seed, in the order they are
//! made, so a simulated run with the same seed elects the same leaders at
//! the same instants. Blocking work ([`blocking`]: reading a snapshot) then
//! runs in place instead of on tokio's thread pool, whose threads would
//! finish it at instants the simulation does not control.

use std::cell::RefCell;
use std::future::Future;
use std::time::Duration;

use futures_util::future::Either;

use openraft_rt::{AsyncRuntime, OptionalSend};
use openraft_rt_tokio::{TokioInstant, TokioMpsc, TokioMutex, TokioOneshot, TokioRuntime, TokioWatch};
use rand_openraft::rngs::SmallRng;
use rand_openraft::SeedableRng;

thread_local! {
    /// This thread's generator while simulating; each draw openraft asks
    /// for is a generator seeded from it.
    static SEEDED: RefCell<Option<SmallRng>> = const { RefCell::new(None) };
}

/// Simulate on this thread: openraft's draws follow `seed`, and blocking
/// work runs in place.
pub fn simulate(seed: u64) {
    SEEDED.with(|r| *r.borrow_mut() = Some(SmallRng::seed_from_u64(seed)));
}

/// Stop simulating on this thread (the OS generator, tokio's thread pool).
pub fn stop_simulating() {
    SEEDED.with(|r| *r.borrow_mut() = None);
}

fn simulating() -> bool {
    SEEDED.with(|r| r.borrow().is_some())
}

/// Run `f`, which blocks (reads a table, hashes a file), off the async
/// threads: on tokio's blocking pool, or in place while simulating. In
/// place, `f` runs now, before the returned future is first polled.
pub fn blocking<F, T>(f: F) -> impl Future<Output = std::io::Result<T>> + Send
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if simulating() {
        Either::Left(std::future::ready(Ok(f())))
    } else {
        let job = tokio::task::spawn_blocking(f);
        Either::Right(async move { job.await.map_err(std::io::Error::other) })
    }
}

/// tokio, with seedable randomness. Everything else is tokio's.
#[derive(Debug)]
pub struct TidalRuntime {
    inner: TokioRuntime,
}

impl AsyncRuntime for TidalRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = tokio::task::JoinHandle<T>;
    type Sleep = tokio::time::Sleep;
    type Instant = TokioInstant;
    type TimeoutError = tokio::time::error::Elapsed;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = tokio::time::Timeout<T>;
    type ThreadLocalRng = SmallRng;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        TokioRuntime::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        TokioRuntime::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        TokioRuntime::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(duration: Duration, future: F) -> Self::Timeout<R, F> {
        TokioRuntime::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(deadline: Self::Instant, future: F) -> Self::Timeout<R, F> {
        TokioRuntime::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        join_error.is_panic()
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        SEEDED.with(|r| match r.borrow_mut().as_mut() {
            Some(seeded) => SmallRng::from_rng(seeded),
            None => SmallRng::from_rng(&mut rand_openraft::rng()),
        })
    }

    type Mpsc = TokioMpsc;
    type Watch = TokioWatch;
    type Oneshot = TokioOneshot;
    type Mutex<T: OptionalSend + 'static> = TokioMutex<T>;

    fn new(threads: usize) -> Self {
        TidalRuntime { inner: TokioRuntime::new(threads) }
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        self.inner.block_on(future)
    }

    fn spawn_blocking<F, T>(f: F) -> impl Future<Output = Result<T, std::io::Error>> + Send
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        blocking(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_openraft::RngExt;

    fn draws() -> Vec<u64> {
        (0..8).map(|_| TidalRuntime::thread_rng().random_range(150..300)).collect()
    }

    #[test]
    fn a_seeded_thread_draws_the_same_sequence_every_time() {
        simulate(42);
        let a = draws();
        simulate(42);
        let b = draws();
        simulate(43);
        let c = draws();
        stop_simulating();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.iter().all(|d| (150..300).contains(d)));
        // Successive draws differ (not one generator re-seeded alike).
        assert!(a.windows(2).any(|w| w[0] != w[1]), "{a:?}");
    }
}

#[cfg(test)]
mod blocking_tests {
    use super::*;

    #[tokio::test]
    async fn blocking_work_runs_on_the_pool_or_in_place_while_simulating() {
        let caller = std::thread::current().id();
        let pooled = blocking(|| std::thread::current().id()).await.unwrap();
        assert_ne!(pooled, caller);
        simulate(1);
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let job = blocking(move || {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            std::thread::current().id()
        });
        // In place: done before the future is polled.
        assert!(ran.load(std::sync::atomic::Ordering::SeqCst));
        let inline = job.await.unwrap();
        stop_simulating();
        assert_eq!(inline, caller);
    }
}
