//! An in-memory [`KvStore`] over a `BTreeMap`: the reference store for
//! tests here and in the crates above, and a model the redb store must
//! behave like.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::record::Record;
use super::store::{KvStore, StoreError};

/// A [`KvStore`] that never fails.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemStore {
    map: BTreeMap<Vec<u8>, Record>,
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
}

impl KvStore for MemStore {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, StoreError> {
        Ok(self.map.get(key).cloned())
    }

    fn put(&mut self, key: &[u8], rec: &Record) -> Result<(), StoreError> {
        self.map.insert(key.to_vec(), rec.clone());
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> Result<bool, StoreError> {
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
        self.map.clear();
        Ok(n)
    }

    fn len(&self) -> Result<u64, StoreError> {
        Ok(self.map.len() as u64)
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
}
