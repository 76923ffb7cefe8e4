//! One group's page of a SCAN, in the reply shape of [`super::ReadOp::Scan`].
//!
//! Redis cursors are opaque numbers; tidal's router keeps its own cursor
//! table and walks the tenant's slots in order, each slot in key order, with
//! `ReadOp::Scan` to whichever group owns the slot at the time, resuming
//! strictly after the last key a page examined or at the slot where the
//! last page stopped. A position names a slot, never a group, so a slot
//! that moves between pages is neither skipped nor scanned twice. The page
//! travels as an ordinary [`Reply`] so it can cross the same RPC path as
//! every read:
//!
//! ```text
//! Array[ Bulk(next_after) | Nil (slots exhausted), Array[Bulk(key)...], Int(next_slot) ]
//! ```
//!
//! Nil rather than an empty string marks the end, because the empty key is a
//! valid Redis key.

use super::reply::Reply;

/// A decoded SCAN page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPage {
    /// Resume after this key; `None` when the page's slots have no more keys.
    pub next_after: Option<Vec<u8>>,
    /// With no `next_after`: the slot to resume at (the first the group
    /// did not scan).
    pub next_slot: u32,
    /// Live keys of the page that matched the pattern.
    pub keys: Vec<Vec<u8>>,
}

impl ScanPage {
    pub fn to_reply(&self) -> Reply {
        Reply::Array(vec![
            Reply::bulk_or_nil(self.next_after.clone()),
            Reply::Array(self.keys.iter().cloned().map(Reply::Bulk).collect()),
            Reply::Int(i64::from(self.next_slot)),
        ])
    }

    /// Reads a page back; `None` if `reply` does not have the page shape
    /// (for example, it is an error).
    pub fn from_reply(reply: &Reply) -> Option<ScanPage> {
        let Reply::Array(parts) = reply else { return None };
        let [next, Reply::Array(keys), Reply::Int(next_slot)] = parts.as_slice() else {
            return None;
        };
        let next_slot = u32::try_from(*next_slot).ok()?;
        let next_after = match next {
            Reply::Nil => None,
            Reply::Bulk(k) => Some(k.clone()),
            _ => return None,
        };
        let keys = keys
            .iter()
            .map(|k| match k {
                Reply::Bulk(k) => Some(k.clone()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        Some(ScanPage { next_after, next_slot, keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_shapes() {
        let page = ScanPage { next_after: Some(Vec::new()), next_slot: 3, keys: vec![b"a".to_vec()] };
        assert_eq!(ScanPage::from_reply(&page.to_reply()), Some(page));
        let done = ScanPage { next_after: None, next_slot: 16, keys: vec![] };
        assert_eq!(ScanPage::from_reply(&done.to_reply()), Some(done));
        assert_eq!(ScanPage::from_reply(&Reply::err("x")), None);
        assert_eq!(
            ScanPage::from_reply(&Reply::Array(vec![Reply::Nil, Reply::Array(vec![Reply::Int(1)]), Reply::Int(0)])),
            None
        );
        assert_eq!(ScanPage::from_reply(&Reply::Array(vec![Reply::Nil, Reply::Array(vec![]), Reply::Int(-1)])), None);
    }
}
