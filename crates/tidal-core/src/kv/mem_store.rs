//! An in-memory [`KvStore`] over a `BTreeMap`: the reference store for
//! tests here and in the crates above, and a model the redb store must
//! behave like.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::record::Record;
use super::store::{element_key, prefixed_bounds, ElementRows, KvStore, StoreError};

/// A [`KvStore`] that never fails.
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    map: BTreeMap<Vec<u8>, Record>,
    /// Element rows by [`element_key`].
    elems: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Rows stored or deleted, and changes counted (see [`KvStore::writes`]).
    writes: u64,
    changes: u64,
}

impl MemStore {
    pub fn new() -> MemStore {
        MemStore::default()
    }

    /// Every stored record in key order, expired ones included; lets tests
    /// compare whole states.
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], &Record)> {
        self.map.iter().map(|(k, v)| (k.as_slice(), v))
    }

    /// How many element rows are stored, for every collection together.
    pub fn element_rows(&self) -> usize {
        self.elems.len()
    }
}

/// Two stores are equal when they hold the same rows, however they came
/// to hold them.
impl PartialEq for MemStore {
    fn eq(&self, other: &MemStore) -> bool {
        self.map == other.map && self.elems == other.elems
    }
}

impl Eq for MemStore {}

impl KvStore for MemStore {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, StoreError> {
        Ok(self.map.get(key).cloned())
    }

    fn put(&mut self, key: &[u8], rec: &Record) -> Result<(), StoreError> {
        self.writes += 1;
        self.map.insert(key.to_vec(), rec.clone());
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<bool, StoreError> {
        self.writes += 1;
        Ok(self.map.remove(key).is_some())
    }

    fn scan(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<(Vec<u8>, Record)>, StoreError> {
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(self
            .map
            .range::<[u8], _>((lower, Bound::Unbounded))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn clear(&mut self) -> Result<u64, StoreError> {
        let n = self.map.len() as u64;
        self.writes += 1;
        self.map.clear();
        self.elems.clear();
        Ok(n)
    }

    fn len(&self) -> Result<u64, StoreError> {
        Ok(self.map.len() as u64)
    }

    fn may_hold_collections(&self, _key: &[u8]) -> Result<bool, StoreError> {
        Ok(!self.elems.is_empty())
    }

    fn writes(&self) -> u64 {
        self.writes
    }

    fn discount_writes(&mut self, mark: u64) {
        self.writes = mark.min(self.writes);
    }

    fn count_changes(&mut self, n: u64) {
        self.changes += n;
    }

    fn changes(&self) -> u64 {
        self.changes
    }

    fn elem_get(&self, key: &[u8], sub: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.elems.get(&element_key(key, sub)).cloned())
    }

    fn elem_put(&mut self, key: &[u8], sub: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.writes += 1;
        self.elems.insert(element_key(key, sub), value.to_vec());
        Ok(())
    }

    fn elem_delete(&mut self, key: &[u8], sub: &[u8]) -> Result<(), StoreError> {
        self.writes += 1;
        self.elems.remove(&element_key(key, sub));
        Ok(())
    }

    fn elem_range(
        &self,
        key: &[u8],
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        limit: usize,
    ) -> Result<ElementRows, StoreError> {
        let prefix = 4 + key.len();
        Ok(self
            .elems
            .range(prefixed_bounds(&element_key(key, b""), lower, upper))
            .take(limit)
            .map(|(k, v)| (k[prefix..].to_vec(), v.clone()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_is_exclusive_and_bounded() {
        let mut s = MemStore::new();
        for k in [&b"b"[..], b"a", b"", b"c"] {
            s.put(k, &Record::new("v")).unwrap();
        }
        let keys = |v: Vec<(Vec<u8>, Record)>| v.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(keys(s.scan(None, 2).unwrap()), vec![b"".to_vec(), b"a".to_vec()]);
        assert_eq!(keys(s.scan(Some(b""), 2).unwrap()), vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(keys(s.scan(Some(b"b"), 10).unwrap()), vec![b"c".to_vec()]);
        assert!(s.scan(Some(b"c"), 10).unwrap().is_empty());
        assert_eq!(s.len().unwrap(), 4);
        assert!(s.delete(b"a").unwrap());
        assert!(!s.delete(b"a").unwrap());
        assert_eq!(s.clear().unwrap(), 3);
        assert!(s.is_empty().unwrap());
    }

    #[test]
    fn element_rows_stay_within_their_key() {
        let mut s = MemStore::new();
        // Keys that are prefixes of each other, and all-0xff keys, whose
        // ranges must not bleed into the next key's.
        for key in [&b"a"[..], b"ab", b"\xff", b"\xff\xff", b""] {
            for sub in [&b""[..], b"x", b"y"] {
                s.elem_put(key, sub, &[key, sub].concat()).unwrap();
            }
        }
        for key in [&b"a"[..], b"ab", b"\xff", b"\xff\xff", b""] {
            let rows = s.elem_range(key, Bound::Unbounded, Bound::Unbounded, usize::MAX).unwrap();
            let subs: Vec<&[u8]> = rows.iter().map(|(k, _)| k.as_slice()).collect();
            assert_eq!(subs, vec![&b""[..], b"x", b"y"], "key {key:?}");
            assert!(rows.iter().all(|(sub, v)| *v == [key, sub.as_slice()].concat()));
        }
        let rows = s.elem_range(b"a", Bound::Excluded(b""), Bound::Included(b"x"), 10).unwrap();
        assert_eq!(rows, vec![(b"x".to_vec(), b"ax".to_vec())]);
        s.elem_delete(b"a", b"x").unwrap();
        assert_eq!(s.elem_get(b"a", b"x").unwrap(), None);
        assert_eq!(s.elem_get(b"ab", b"x").unwrap(), Some(b"abx".to_vec()));
        assert!(s.is_empty().unwrap());
        s.clear().unwrap();
        assert_eq!(s.element_rows(), 0);
    }
}
