//! One group's page of a SCAN, in the reply shape of [`super::ReadOp::Scan`].
//!
//! Redis cursors are opaque numbers; tidal's router keeps its own cursor
//! table and walks each group in key order with `ReadOp::Scan`, resuming
//! strictly after the last key a page examined. The page travels as an
//! ordinary [`Reply`] so it can cross the same RPC path as every read:
//!
//! ```text
//! Array[ Bulk(next_after) | Nil (group exhausted), Array[Bulk(key)...] ]
//! ```
//!
//! Nil rather than an empty string marks the end, because the empty key is a
//! valid Redis key.

use super::reply::Reply;

/// A decoded SCAN page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPage {
    /// Resume after this key; `None` when the group has no more keys.
    pub next_after: Option<Vec<u8>>,
    /// Live keys of the page that matched the pattern.
    pub keys: Vec<Vec<u8>>,
}

impl ScanPage {
    pub fn to_reply(&self) -> Reply {
        Reply::Array(vec![
            Reply::bulk_or_nil(self.next_after.clone()),
            Reply::Array(self.keys.iter().cloned().map(Reply::Bulk).collect()),
        ])
    }

    /// Reads a page back; `None` if `reply` does not have the page shape
    /// (for example, it is an error).
    pub fn from_reply(reply: &Reply) -> Option<ScanPage> {
        let Reply::Array(parts) = reply else { return None };
        let [next, Reply::Array(keys)] = parts.as_slice() else {
            return None;
        };
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
        Some(ScanPage { next_after, keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_shapes() {
        let page = ScanPage { next_after: Some(Vec::new()), keys: vec![b"a".to_vec()] };
        assert_eq!(ScanPage::from_reply(&page.to_reply()), Some(page));
        let done = ScanPage { next_after: None, keys: vec![] };
        assert_eq!(ScanPage::from_reply(&done.to_reply()), Some(done));
        assert_eq!(ScanPage::from_reply(&Reply::err("x")), None);
        assert_eq!(ScanPage::from_reply(&Reply::Array(vec![Reply::Nil, Reply::Array(vec![Reply::Int(1)])])), None);
    }
}
