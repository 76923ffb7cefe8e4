//! Keyspace notifications out of a PRG's state machine: the node's
//! `notify-keyspace-events` flags, read as each write applies, and where
//! the events it caused go. Every replica applies the write; the node
//! publishes the events only of the PRGs it leads.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tidal_core::kv::notify::Event;
use tokio::sync::mpsc;

/// The events of one applied entry of one PRG.
#[derive(Debug)]
pub struct Noted {
    pub group: String,
    pub events: Vec<Event>,
}

/// A machine's link to its node's notifications: none until connected.
#[derive(Default)]
pub struct Notices {
    link: OnceLock<(Arc<AtomicU32>, mpsc::Sender<Noted>)>,
    /// Events dropped because the node's queue was full.
    dropped: AtomicU64,
}

impl Notices {
    /// Read the node's flags from `flags` and send events to `sink`.
    pub fn connect(&self, flags: Arc<AtomicU32>, sink: mpsc::Sender<Noted>) {
        let _ = self.link.set((flags, sink));
    }

    /// The flags in force; 0 (nothing noted) when not connected.
    pub fn flags(&self) -> u32 {
        self.link.get().map_or(0, |(f, _)| f.load(Ordering::Relaxed))
    }

    /// Hand `events` to the node; dropped, and counted, when its queue is
    /// full (notifications are at most once, as Redis's are).
    pub fn send(&self, group: &str, events: Vec<Event>) {
        if let Some((_, sink)) = self.link.get() {
            let n = events.len() as u64;
            if sink.try_send(Noted { group: group.to_string(), events }).is_err() {
                let before = self.dropped.fetch_add(n, Ordering::Relaxed);
                if before / 10_000 != (before + n) / 10_000 || before == 0 {
                    tracing::warn!(group, dropped = before + n, "keyspace events dropped: the node's queue is full");
                }
            }
        }
    }
}
