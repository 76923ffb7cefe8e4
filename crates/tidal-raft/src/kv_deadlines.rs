//! The deadlines of a PRG replica's keys that carry a TTL, in memory, so
//! that the reaper finds a key as it expires instead of walking every key
//! of the PRG to meet it.
//!
//! ```text
//!  apply: a key stored with a TTL ──note──> by_key + queue (by deadline)
//!         stored without one, or deleted ──forget──┘
//!  reaper (leader): queue entries past their deadline ─> look at the key ─> Reap
//!  reaper walk (until whole): every key met with a TTL ──note──┘
//! ```
//!
//! Every replica notes the keys that writes and a move's rows store, as
//! they apply, so the note is alike wherever leadership goes. Keys that
//! were stored before the replica started, or that a snapshot brought, are
//! known only once a walk of the reaper has met them. So the note is
//! *whole* only after a walk that began after the last such event has
//! ended (the *era* tells); until then the reaper walks as well.
//!
//! The note holds at most a cap of keys (each key once, and about a
//! hundred bytes beside). A note that would hold more is dropped, and
//! the replica keeps none ("over") until a walk meets fewer than half as
//! many keys with a TTL: meanwhile the reaper walks, as it would without
//! a note.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// The most keys a replica's note holds.
pub const CAP: usize = 200_000;

#[derive(Debug)]
pub struct Deadlines {
    cap: usize,
    by_key: HashMap<Arc<[u8]>, u64>,
    /// `(deadline, key)` of every key in `by_key`, the key shared.
    queue: BTreeSet<(u64, Arc<[u8]>)>,
    /// Every stored key with a TTL is here.
    whole: bool,
    /// Raised each time keys may be stored that are not here.
    era: u64,
    /// Over the cap: nothing is noted.
    over: bool,
}

impl Default for Deadlines {
    fn default() -> Self {
        Self::with_cap(CAP)
    }
}

impl Deadlines {
    pub fn with_cap(cap: usize) -> Self {
        Self { cap, by_key: HashMap::new(), queue: BTreeSet::new(), whole: false, era: 0, over: false }
    }

    /// `key` was stored with the deadline `at` (Unix ms), or without a
    /// TTL or deleted (`None`).
    pub fn note(&mut self, key: &[u8], at: Option<u64>) {
        if self.over || (at.is_none() && self.by_key.is_empty()) {
            return;
        }
        let noted = self.by_key.get_key_value(key).map(|(k, old)| (k.clone(), *old));
        let key = match noted {
            Some((_, old)) if Some(old) == at => return,
            Some((key, old)) => {
                self.queue.remove(&(old, key.clone()));
                key
            }
            None if at.is_none() => return,
            None if self.by_key.len() >= self.cap => return self.give_up(),
            None => Arc::from(key),
        };
        match at {
            Some(at) => {
                self.by_key.insert(key.clone(), at);
                self.queue.insert((at, key));
            }
            None => {
                self.by_key.remove(&key);
            }
        }
    }

    fn give_up(&mut self) {
        self.by_key = HashMap::new();
        self.queue = BTreeSet::new();
        self.over = true;
        self.unsettle();
    }

    /// Keys may be stored that were not noted (a snapshot was installed):
    /// start over.
    pub fn forget_all(&mut self) {
        self.by_key = HashMap::new();
        self.queue = BTreeSet::new();
        self.over = false;
        self.unsettle();
    }

    /// Every key was deleted (FLUSHDB): nothing is left to note.
    pub fn clear(&mut self) {
        self.by_key.clear();
        self.queue.clear();
    }

    /// The keys for which `dropped` holds were dropped (their slots left).
    pub fn forget_if(&mut self, dropped: impl Fn(&[u8]) -> bool) {
        self.by_key.retain(|key, _| !dropped(key));
        self.queue.retain(|(_, key)| !dropped(key));
    }

    /// Keys may be served that were not noted (slots changed hands): the
    /// note is whole again only after the next walk.
    pub fn unsettle(&mut self) {
        self.whole = false;
        self.era += 1;
    }

    /// A walk begins: its era, to hand to [`Deadlines::walked`]. With
    /// `resume`, a note that was over starts again.
    pub fn walk_begins(&mut self, resume: bool) -> u64 {
        if self.over && resume {
            self.over = false;
            self.era += 1;
        }
        self.era
    }

    /// A walk that began in `era` met every key: if nothing came in
    /// unnoted since, the note is whole.
    pub fn walked(&mut self, era: u64) {
        if era == self.era && !self.over {
            self.whole = true;
        }
    }

    pub fn whole(&self) -> bool {
        self.whole
    }

    pub fn over(&self) -> bool {
        self.over
    }

    pub fn noted(&self) -> usize {
        self.by_key.len()
    }

    /// Noted keys whose deadline is before `now_ms`, soonest first.
    pub fn due(&self, now_ms: u64) -> impl Iterator<Item = &[u8]> + '_ {
        self.queue.iter().take_while(move |(at, _)| *at < now_ms).map(|(_, key)| &key[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(d: &Deadlines, now: u64) -> Vec<&[u8]> {
        d.due(now).collect()
    }

    #[test]
    fn a_key_is_due_after_its_latest_deadline_until_it_is_stored_without_one() {
        let mut d = Deadlines::default();
        d.note(b"a", Some(300));
        d.note(b"b", Some(100));
        d.note(b"c", None);
        assert_eq!(due(&d, 1_000), vec![&b"b"[..], b"a"], "soonest first");
        assert!(due(&d, 100).is_empty(), "a key is live at its deadline");
        d.note(b"b", Some(500));
        assert_eq!(due(&d, 400), vec![&b"a"[..]], "a new deadline replaces the old");
        d.note(b"a", None);
        assert!(due(&d, 400).is_empty());
        assert_eq!(d.noted(), 1);
        d.clear();
        assert_eq!((d.noted(), due(&d, u64::MAX).len()), (0, 0));
    }

    #[test]
    fn the_note_is_whole_after_a_walk_that_nothing_unsettled() {
        let mut d = Deadlines::default();
        assert!(!d.whole(), "a replica just started may hold keys it did not note");
        let era = d.walk_begins(false);
        d.walked(era);
        assert!(d.whole());
        let era = d.walk_begins(false);
        d.unsettle();
        d.walked(era);
        assert!(!d.whole(), "slots changed hands during the walk");
        let era = d.walk_begins(false);
        d.note(b"k", Some(1));
        d.forget_all();
        d.walked(era);
        assert!(!d.whole(), "a snapshot came in during the walk");
        assert_eq!(d.noted(), 0);
        let era = d.walk_begins(false);
        d.walked(era);
        assert!(d.whole());
    }

    #[test]
    fn a_note_over_its_cap_is_dropped_until_a_walk_resumes_it() {
        let mut d = Deadlines::with_cap(2);
        let era = d.walk_begins(false);
        d.walked(era);
        d.note(b"a", Some(1));
        d.note(b"b", Some(2));
        d.note(b"a", Some(3));
        assert!(!d.over(), "a key noted again takes no room");
        d.note(b"c", Some(3));
        assert!(d.over() && !d.whole());
        assert_eq!(d.noted(), 0);
        d.note(b"d", Some(4));
        assert_eq!(d.noted(), 0, "nothing is noted while over");
        let era = d.walk_begins(false);
        d.walked(era);
        assert!(!d.whole(), "a walk that did not resume the note leaves it over");
        let era = d.walk_begins(true);
        assert!(!d.over());
        d.note(b"d", Some(4));
        d.walked(era);
        assert!(d.whole());
        assert_eq!(due(&d, 10), vec![&b"d"[..]]);
    }
}
