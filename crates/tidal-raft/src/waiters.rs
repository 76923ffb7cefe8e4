//! Clients blocked on keys of a PRG (BLPOP and its kin), woken on the
//! replica that holds them when a write to one of their keys applies, and
//! served in the order they blocked.
//!
//! A waiter registers its keys before it looks at them, so a write that
//! applies after the look wakes it, and one before it is seen by it. A
//! wake is kept until the waiter next waits ([`Notify::notify_one`]). A
//! change of ownership wakes every waiter: its keys may have moved away
//! (or arrived), and it must look again.
//!
//! Order: a waiter whose keys had a write looks (and pops) only when no
//! older waiter on one of its keys has a wake to handle or is handling
//! one; each waiter that finishes handling a wake, or leaves, nudges the
//! younger ones on its keys. So of several clients blocked on one list,
//! the first to block takes the first element, as in Redis. Age is the
//! time the client first blocked (`since`, kept across rounds), then the
//! order of registration.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Default)]
pub struct Waiters {
    /// Registered waiters: applying a write looks no further when none is.
    count: AtomicUsize,
    inner: Mutex<Registry>,
    /// Told whenever a waiter finishes handling a wake, or leaves.
    settle: Notify,
}

#[derive(Default)]
struct Registry {
    next: u64,
    by_key: HashMap<Vec<u8>, Vec<Arc<Entry>>>,
    by_token: HashMap<u64, Arc<Entry>>,
    /// Cancels that found no waiter (they overtook its registration): the
    /// latest [`CANCELS_KEPT`], refused when they register.
    early_cancels: VecDeque<u64>,
}

/// Cancels kept for waiters that have not registered yet.
const CANCELS_KEPT: usize = 1024;

struct Entry {
    /// (since, registration): smaller is older.
    age: (u64, u64),
    notify: Notify,
    /// A write to one of its keys applied and it has not looked since.
    pending: AtomicBool,
    /// It is looking, or popping.
    busy: AtomicBool,
    /// Its client left: it must not pop.
    cancelled: AtomicBool,
}

/// One blocked client's registration; dropping it ends the wait.
pub struct Waiter<'a> {
    waiters: &'a Waiters,
    keys: Vec<Vec<u8>>,
    entry: Arc<Entry>,
    token: u64,
}

impl Waiters {
    /// Wait for writes to `keys`, for a client blocked since `since`,
    /// named `token` for [`Waiters::cancel`]. A new waiter has a wake to
    /// handle: it looks once when its turn comes.
    pub fn register(&self, keys: &[&[u8]], since: u64, token: u64) -> Waiter<'_> {
        let mut keys: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
        keys.sort();
        keys.dedup();
        let mut r = self.inner.lock().expect("waiters lock");
        let entry = Arc::new(Entry {
            age: (since, r.next),
            notify: Notify::new(),
            pending: AtomicBool::new(true),
            busy: AtomicBool::new(false),
            cancelled: AtomicBool::new(r.early_cancels.contains(&token)),
        });
        r.next += 1;
        // The client's node sends a round only once the one before it has
        // answered or been given up on, so a round of the same command
        // still here outlived its sender: it must not pop, since its
        // answer would reach nobody.
        if let Some(stale) = r.by_token.insert(token, entry.clone()) {
            stale.cancelled.store(true, Ordering::SeqCst);
            stale.notify.notify_one();
        }
        for k in &keys {
            r.by_key.entry(k.clone()).or_default().push(entry.clone());
        }
        self.count.fetch_add(1, Ordering::SeqCst);
        Waiter { waiters: self, keys, entry, token }
    }

    /// The client of waiter `token` left: it ends without popping. A
    /// cancel that arrives before its waiter is kept for it.
    pub fn cancel(&self, token: u64) {
        let mut r = self.inner.lock().expect("waiters lock");
        match r.by_token.get(&token) {
            Some(e) => {
                e.cancelled.store(true, Ordering::SeqCst);
                e.notify.notify_one();
            }
            None => {
                if r.early_cancels.len() == CANCELS_KEPT {
                    r.early_cancels.pop_front();
                }
                r.early_cancels.push_back(token);
            }
        }
    }

    /// Whether any client waits here.
    pub fn any(&self) -> bool {
        self.count.load(Ordering::SeqCst) > 0
    }

    /// A write to `keys` applied: their waiters have a wake to handle.
    pub fn wake<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) {
        if !self.any() {
            return;
        }
        let r = self.inner.lock().expect("waiters lock");
        for k in keys {
            for e in r.by_key.get(k).into_iter().flatten() {
                e.pending.store(true, Ordering::SeqCst);
                e.notify.notify_one();
            }
        }
    }

    /// Wake every waiter.
    pub fn wake_all(&self) {
        if !self.any() {
            return;
        }
        let r = self.inner.lock().expect("waiters lock");
        for e in r.by_key.values().flatten() {
            e.pending.store(true, Ordering::SeqCst);
            e.notify.notify_one();
        }
    }

    /// Until no waiter has a wake to handle or is handling one (popping),
    /// or `within` has passed: a write that wakes blocked clients answers
    /// once they are served, as Redis serves them before its next command,
    /// so the writer's next read sees what they took (and what a BLMOVE
    /// moved on to the clients it wakes in turn).
    pub async fn settled(&self, within: std::time::Duration) {
        if !self.any() {
            return;
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let mut told = std::pin::pin!(self.settle.notified());
            // Registered before the look, so a change after it is heard.
            told.as_mut().enable();
            if !self.stirring() || tokio::time::timeout_at(deadline, told).await.is_err() {
                return;
            }
        }
    }

    /// Whether a waiter that may still pop has a wake to handle or is
    /// handling one.
    fn stirring(&self) -> bool {
        let r = self.inner.lock().expect("waiters lock");
        r.by_token.values().any(|e| {
            !e.cancelled.load(Ordering::SeqCst) && (e.pending.load(Ordering::SeqCst) || e.busy.load(Ordering::SeqCst))
        })
    }

    /// Let the waiters younger than `entry` on `keys` check their turn.
    fn nudge(&self, keys: &[Vec<u8>], entry: &Entry) {
        let r = self.inner.lock().expect("waiters lock");
        for k in keys {
            for e in r.by_key.get(k).into_iter().flatten().filter(|e| e.age > entry.age) {
                e.notify.notify_one();
            }
        }
    }
}

impl Waiter<'_> {
    /// Until a write to one of the keys applies, or an older waiter steps
    /// aside (or one of those happened since the last wait).
    pub async fn woken(&self) {
        self.entry.notify.notified().await;
    }

    /// Whether it is this waiter's turn to look: it has a wake to handle
    /// and no older waiter on its keys has one or is handling one. If so,
    /// it is now handling it ([`Waiter::looked`] ends that).
    pub fn my_turn(&self) -> bool {
        if !self.entry.pending.load(Ordering::SeqCst) {
            return false;
        }
        let r = self.waiters.inner.lock().expect("waiters lock");
        let older_first =
            self.keys.iter().any(|k| {
                r.by_key.get(k).into_iter().flatten().any(|e| {
                    e.age < self.entry.age && (e.pending.load(Ordering::SeqCst) || e.busy.load(Ordering::SeqCst))
                })
            });
        if older_first {
            return false;
        }
        // Taken under the lock: a wake from now on is a new one.
        self.entry.busy.store(true, Ordering::SeqCst);
        self.entry.pending.store(false, Ordering::SeqCst);
        true
    }

    /// Whether its client left (see [`Waiters::cancel`]).
    pub fn cancelled(&self) -> bool {
        self.entry.cancelled.load(Ordering::SeqCst)
    }

    /// It looked and goes on waiting: the younger waiters may look.
    pub fn looked(&self) {
        self.entry.busy.store(false, Ordering::SeqCst);
        self.waiters.nudge(&self.keys, &self.entry);
        self.waiters.settle.notify_waiters();
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        {
            let mut r = self.waiters.inner.lock().expect("waiters lock");
            // A later round of the same command may have registered the
            // token again (this one outlived its sender): keep that one's.
            if r.by_token.get(&self.token).is_some_and(|e| Arc::ptr_eq(e, &self.entry)) {
                r.by_token.remove(&self.token);
            }
            for k in &self.keys {
                if let Some(list) = r.by_key.get_mut(k) {
                    list.retain(|e| !Arc::ptr_eq(e, &self.entry));
                    if list.is_empty() {
                        r.by_key.remove(k);
                    }
                }
            }
        }
        self.waiters.count.fetch_sub(1, Ordering::SeqCst);
        self.waiters.nudge(&self.keys, &self.entry);
        self.waiters.settle.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn woken_within(w: &Waiter<'_>, ms: u64) -> bool {
        tokio::time::timeout(Duration::from_millis(ms), w.woken()).await.is_ok()
    }

    #[tokio::test]
    async fn a_write_wakes_only_the_waiters_of_its_keys_and_is_kept_until_they_wait() {
        let ws = Waiters::default();
        assert!(!ws.any());
        let a = ws.register(&[b"a", b"b", b"a"], 0, 1);
        let c = ws.register(&[b"c"], 0, 2);
        assert!(a.my_turn() && c.my_turn(), "a new waiter looks once");
        a.looked();
        c.looked();
        assert!(!a.my_turn(), "nothing to handle");
        let _ = woken_within(&a, 10).await;
        let _ = woken_within(&c, 10).await;
        // Woken before waiting: the wake is kept.
        ws.wake([b"b".as_slice(), b"x".as_slice()]);
        assert!(woken_within(&a, 50).await);
        assert!(!woken_within(&c, 50).await);
        assert!(a.my_turn() && !c.my_turn());
        a.looked();
        ws.wake_all();
        assert!(woken_within(&a, 50).await && woken_within(&c, 50).await);
        drop(a);
        assert!(ws.any());
        drop(c);
        assert!(!ws.any());
        assert!(ws.inner.lock().unwrap().by_key.is_empty());
    }

    #[tokio::test]
    async fn older_waiters_go_first_and_younger_ones_follow_when_nudged() {
        let ws = Waiters::default();
        // Blocked since 5 and since 7: age beats registration order.
        let young = ws.register(&[b"k"], 7, 3);
        let old = ws.register(&[b"k", b"other"], 5, 4);
        assert!(!young.my_turn(), "the older one has not looked yet");
        assert!(old.my_turn());
        assert!(!young.my_turn(), "the older one is looking");
        old.looked();
        assert!(woken_within(&young, 50).await, "nudged");
        assert!(young.my_turn());
        young.looked();
        // A write: both have a wake; the younger waits for the older.
        ws.wake([b"k".as_slice()]);
        assert!(!young.my_turn());
        assert!(old.my_turn());
        drop(old);
        assert!(woken_within(&young, 50).await);
        assert!(young.my_turn());
    }

    #[tokio::test]
    async fn a_cancel_reaches_its_waiter_even_before_it_registers() {
        let ws = Waiters::default();
        let w = ws.register(&[b"k"], 0, 10);
        assert!(!w.cancelled());
        ws.cancel(10);
        assert!(woken_within(&w, 50).await && w.cancelled());
        ws.cancel(11);
        let late = ws.register(&[b"k"], 0, 11);
        assert!(late.cancelled(), "the cancel overtook the registration");
        // Two rounds of one command overlap: the older one outlived its
        // sender, is woken and must not pop; its leaving does not take the
        // token from the newer.
        let old_round = ws.register(&[b"k"], 0, 12);
        let new_round = ws.register(&[b"k"], 0, 12);
        assert!(woken_within(&old_round, 50).await && old_round.cancelled(), "the stale round may still pop");
        assert!(!new_round.cancelled());
        drop(old_round);
        ws.cancel(12);
        assert!(new_round.cancelled());
        drop((w, late, new_round));
        assert!(ws.inner.lock().unwrap().by_token.is_empty());
    }
}
