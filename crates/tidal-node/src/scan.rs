//! SCAN cursors. Redis cursors are numbers; a tidal SCAN walks a tenant's
//! slots in order, each in key order, so a cursor stands for (slot, last
//! key): it names a slot, never a PRG, so it stays valid while slots move.
//! The node keeps that position in a bounded table and hands out its
//! number. Cursors are node-local: a client continues a SCAN on the same
//! node.

use std::collections::{BTreeMap, VecDeque};

/// Where a SCAN continues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanPos {
    pub tenant: String,
    /// The slot the scan is in.
    pub slot: u32,
    /// Resume strictly after this key of that slot (at its start if `None`).
    pub after: Option<Vec<u8>>,
}

/// Most cursors kept; the oldest is forgotten first.
pub const MAX_CURSORS: usize = 16_384;

#[derive(Debug)]
pub struct ScanCursors {
    next: u64,
    positions: BTreeMap<u64, ScanPos>,
    order: VecDeque<u64>,
}

impl Default for ScanCursors {
    fn default() -> Self {
        Self { next: 1, positions: BTreeMap::new(), order: VecDeque::new() }
    }
}

impl ScanCursors {
    /// The position of `cursor`; 0 starts a new scan, an unknown cursor is
    /// `None` (it was forgotten or never issued here).
    pub fn resume(&mut self, tenant: &str, cursor: u64) -> Option<ScanPos> {
        if cursor == 0 {
            return Some(ScanPos { tenant: tenant.to_string(), slot: 0, after: None });
        }
        let pos = self.positions.remove(&cursor)?;
        self.order.retain(|c| *c != cursor);
        Some(pos)
    }

    /// Remember `pos` and return its cursor number (never 0).
    pub fn remember(&mut self, pos: ScanPos) -> u64 {
        let id = self.next;
        self.next = self.next.wrapping_add(1).max(1);
        if self.order.len() >= MAX_CURSORS {
            if let Some(old) = self.order.pop_front() {
                self.positions.remove(&old);
            }
        }
        self.positions.insert(id, pos);
        self.order.push_back(id);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_resume_once_and_zero_starts_over() {
        let mut c = ScanCursors::default();
        let start = c.resume("t", 0).unwrap();
        assert_eq!(start.slot, 0);
        let id = c.remember(ScanPos { tenant: "t".into(), slot: 2, after: Some(b"k".to_vec()) });
        assert_ne!(id, 0);
        assert_eq!(c.resume("t", id).unwrap().slot, 2);
        assert_eq!(c.resume("t", id), None);
        assert_eq!(c.resume("t", 999), None);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut c = ScanCursors::default();
        let first = c.remember(ScanPos { tenant: "t".into(), slot: 0, after: None });
        for _ in 0..MAX_CURSORS {
            c.remember(ScanPos { tenant: "t".into(), slot: 1, after: None });
        }
        assert_eq!(c.resume("t", first), None);
        assert!(c.positions.len() <= MAX_CURSORS);
    }
}
