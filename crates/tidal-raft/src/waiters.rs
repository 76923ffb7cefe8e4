//! Clients blocked on keys of a PRG (BLPOP and its kin), woken on the
//! replica that holds them when a write to one of their keys applies.
//!
//! A waiter registers its keys before it looks at them, so a write that
//! applies after the look wakes it, and one before it is seen by it. A
//! wake is kept until the waiter next waits ([`Notify::notify_one`]). A
//! change of ownership wakes every waiter: its keys may have moved away
//! (or arrived), and it must look again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Default)]
pub struct Waiters {
    /// Registered waiters: applying a write looks no further when none is.
    count: AtomicUsize,
    inner: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    next: u64,
    by_key: HashMap<Vec<u8>, Vec<(u64, Arc<Notify>)>>,
}

/// One blocked client's registration; dropping it ends the wait.
pub struct Waiter<'a> {
    waiters: &'a Waiters,
    id: u64,
    keys: Vec<Vec<u8>>,
    notify: Arc<Notify>,
}

impl Waiters {
    /// Wait for writes to `keys`.
    pub fn register(&self, keys: &[&[u8]]) -> Waiter<'_> {
        let notify = Arc::new(Notify::new());
        let mut keys: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
        keys.sort();
        keys.dedup();
        let mut r = self.inner.lock().expect("waiters lock");
        let id = r.next;
        r.next += 1;
        for k in &keys {
            r.by_key.entry(k.clone()).or_default().push((id, notify.clone()));
        }
        self.count.fetch_add(1, Ordering::SeqCst);
        Waiter { waiters: self, id, keys, notify }
    }

    /// Whether any client waits here.
    pub fn any(&self) -> bool {
        self.count.load(Ordering::SeqCst) > 0
    }

    /// Wake the waiters of `keys`.
    pub fn wake<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) {
        if !self.any() {
            return;
        }
        let r = self.inner.lock().expect("waiters lock");
        for k in keys {
            for (_, n) in r.by_key.get(k).into_iter().flatten() {
                n.notify_one();
            }
        }
    }

    /// Wake every waiter.
    pub fn wake_all(&self) {
        if !self.any() {
            return;
        }
        let r = self.inner.lock().expect("waiters lock");
        for (_, n) in r.by_key.values().flatten() {
            n.notify_one();
        }
    }
}

impl Waiter<'_> {
    /// Until a write to one of the keys applies (or one did since the
    /// last wait).
    pub async fn woken(&self) {
        self.notify.notified().await;
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        let mut r = self.waiters.inner.lock().expect("waiters lock");
        for k in &self.keys {
            if let Some(list) = r.by_key.get_mut(k) {
                list.retain(|(id, _)| *id != self.id);
                if list.is_empty() {
                    r.by_key.remove(k);
                }
            }
        }
        self.waiters.count.fetch_sub(1, Ordering::SeqCst);
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
        let a = ws.register(&[b"a", b"b", b"a"]);
        let c = ws.register(&[b"c"]);
        assert!(ws.any());
        // Woken before waiting: the wake is kept.
        ws.wake([b"b".as_slice(), b"x".as_slice()]);
        assert!(woken_within(&a, 50).await);
        assert!(!woken_within(&c, 50).await);
        // Taken once.
        assert!(!woken_within(&a, 50).await);
        ws.wake_all();
        assert!(woken_within(&a, 50).await && woken_within(&c, 50).await);
        drop(a);
        assert!(ws.any());
        drop(c);
        assert!(!ws.any());
        assert!(ws.inner.lock().unwrap().by_key.is_empty());
    }
}
