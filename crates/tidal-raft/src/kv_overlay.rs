//! The in-memory layers a PRG's writes land in before they reach its redb
//! table.
//!
//! ```text
//!   apply ──> active layer ──freeze──> frozen layer ──flush──> redb table
//!   reads:    active  ─miss─>  frozen  ─miss─>  table     (first hit wins)
//! ```
//!
//! Applying a batch of writes as its own redb transaction costs far more
//! than the writes themselves: every commit copies the pages on the path to
//! each touched key and updates redb's page bookkeeping. So writes go to an
//! ordered map in memory, and the map is written into the table in one
//! transaction once it has grown or aged ([`crate::state_machine`] decides
//! when). A key rewritten many times in between reaches the table once.
//!
//! A layer maps a key to its newest record, or to `None` when it was
//! deleted; a *cleared* layer (FLUSHDB) hides everything below it. Reads
//! look top-down and stop at the first layer that knows the key.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use tidal_core::kv::{Record, StoreError as KvError};

/// Estimated bytes of bookkeeping per key in a layer, besides key and value.
const ENTRY_OVERHEAD: usize = 64;

/// The high bit of a stored key's first word marks a collection's element
/// row: `(ELEMENTS | slot) ‖ element_key(key, sub)`. Keys are `slot ‖ key`
/// with a slot below 2^31, so every key sorts before every element row,
/// and each slot's element rows are one contiguous range of their own.
pub(crate) const ELEMENTS: u32 = 0x8000_0000;

/// The slot a stored key belongs to: stored keys are the slot (4 bytes,
/// big-endian) followed by the key, so each slot is one contiguous range
/// (and its element rows another).
pub(crate) fn slot_of_stored(key: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    let n = key.len().min(4);
    b[..n].copy_from_slice(&key[..n]);
    u32::from_be_bytes(b) & !ELEMENTS
}

/// Whether a stored key is a collection's element row.
pub(crate) fn is_element(stored: &[u8]) -> bool {
    stored.first().is_some_and(|b| b & 0x80 != 0)
}

/// The stored key of the element row `sub` of `key`, in `slot`.
pub(crate) fn stored_element(slot: u32, key: &[u8], sub: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + key.len() + sub.len());
    k.extend_from_slice(&(ELEMENTS | slot).to_be_bytes());
    k.extend_from_slice(&tidal_core::kv::element_key(key, sub));
    k
}

/// The first stored key that is an element row.
pub(crate) fn first_element() -> [u8; 4] {
    ELEMENTS.to_be_bytes()
}

/// The bounds of the element rows of `slot`.
pub(crate) fn element_slot_bounds(slot: u32) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let lower = Bound::Included((ELEMENTS | slot).to_be_bytes().to_vec());
    let upper = match (ELEMENTS | slot).checked_add(1) {
        Some(next) => Bound::Excluded(next.to_be_bytes().to_vec()),
        None => Bound::Unbounded,
    };
    (lower, upper)
}

/// Both ranges of `slot`, its keys' and its element rows', in stored order.
pub(crate) fn slot_ranges(slot: u32) -> [KeyRange; 2] {
    [slot_bounds(slot), element_slot_bounds(slot)]
}

/// The stored key of `key` in `slot`.
pub(crate) fn stored_key(slot: u32, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + key.len());
    k.extend_from_slice(&slot.to_be_bytes());
    k.extend_from_slice(key);
    k
}

/// A range of stored keys.
pub(crate) type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The bounds of every stored key of `slot`.
pub(crate) fn slot_bounds(slot: u32) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let lower = Bound::Included(slot.to_be_bytes().to_vec());
    let upper = match slot.checked_add(1) {
        Some(next) => Bound::Excluded(next.to_be_bytes().to_vec()),
        None => Bound::Unbounded,
    };
    (lower, upper)
}

/// Writes since a point in time, newest record per key.
#[derive(Debug, Default)]
pub(crate) struct Layer {
    pub(crate) entries: BTreeMap<Vec<u8>, Option<Record>>,
    /// Everything below this layer was deleted before its entries.
    pub(crate) cleared: bool,
    /// Slots whose rows below this layer were dropped before its entries.
    pub(crate) dropped: BTreeSet<u32>,
    /// Rough memory held, for flush decisions.
    pub(crate) bytes: usize,
}

impl Layer {
    pub(crate) fn put(&mut self, key: &[u8], rec: Option<Record>) {
        self.bytes += key.len() + rec.as_ref().map_or(0, |r| r.value.len()) + ENTRY_OVERHEAD;
        self.entries.insert(key.to_vec(), rec);
    }

    pub(crate) fn clear(&mut self) {
        *self = Layer { cleared: true, ..Layer::default() };
    }

    /// Delete every row of `slot`, element rows included, in this layer and
    /// below it.
    pub(crate) fn drop_slot(&mut self, slot: u32) {
        let doomed: Vec<Vec<u8>> =
            slot_ranges(slot).into_iter().flat_map(|r| self.entries.range(r).map(|(k, _)| k.clone())).collect();
        for k in doomed {
            self.entries.remove(&k);
        }
        self.dropped.insert(slot);
        self.bytes += ENTRY_OVERHEAD;
    }

    /// The layer's entries of keys, in order (element rows left out).
    fn keys(&self) -> impl Iterator<Item = (&Vec<u8>, &Option<Record>)> {
        self.entries.range::<[u8], _>((Bound::Unbounded, Bound::Excluded(&first_element()[..])))
    }

    /// Whether rows below this layer are hidden for `key`.
    fn hides(&self, key: &[u8]) -> bool {
        self.cleared || (!self.dropped.is_empty() && self.dropped.contains(&slot_of_stored(key)))
    }
}

/// Read access to what lies below the layers (the redb tables).
pub(crate) trait Base {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, KvError>;
    /// Records within the bounds in key order, produced lazily.
    fn iter_range<'a>(&'a self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<BaseIter<'a>, KvError>;
    /// Keys stored, element rows not counted.
    fn len(&self) -> Result<u64, KvError>;
    /// Keys stored in `slot`, element rows not counted. A base that can
    /// count its rows without decoding their records does so.
    fn slot_len(&self, slot: u32) -> Result<u64, KvError> {
        let (lo, hi) = slot_bounds(slot);
        let mut n = 0;
        for row in self.iter_range(as_ref(&lo), as_ref(&hi))? {
            row?;
            n += 1;
        }
        Ok(n)
    }
    /// About [`len`](Base::len), for estimates: a base that must read rows
    /// to count exactly answers without reading them.
    fn approx_len(&self) -> Result<u64, KvError> {
        self.len()
    }
}

pub(crate) type BaseIter<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Record), KvError>> + 'a>;

/// `key` as seen through `layers` (top first) over `base`.
pub(crate) fn get(layers: &[&Layer], base: &dyn Base, key: &[u8]) -> Result<Option<Record>, KvError> {
    for layer in layers {
        if let Some(v) = layer.entries.get(key) {
            return Ok(v.clone());
        }
        if layer.hides(key) {
            return Ok(None);
        }
    }
    base.get(key)
}

/// Keys stored (element rows not counted) as seen through `layers` over
/// `base`.
pub(crate) fn len(layers: &[&Layer], base: &dyn Base) -> Result<u64, KvError> {
    let Some((top, below)) = layers.split_first() else {
        return base.len();
    };
    let keys = top.keys();
    if top.cleared {
        return Ok(keys.filter(|(_, v)| v.is_some()).count() as u64);
    }
    let mut n = len(below, base)? as i64;
    for slot in &top.dropped {
        n -= slot_len(below, base, *slot)? as i64;
    }
    corrected(n, keys, top, below, base)
}

/// `below_count`, the keys under `top` (less those it hides), corrected
/// for `top`'s entries `keys`: a store over no key adds one, a deletion of
/// one takes one away.
fn corrected<'a>(
    below_count: i64,
    keys: impl Iterator<Item = (&'a Vec<u8>, &'a Option<Record>)>,
    top: &Layer,
    below: &[&Layer],
    base: &dyn Base,
) -> Result<u64, KvError> {
    let mut n = below_count;
    for (key, v) in keys {
        let was = !top.hides(key) && get(below, base, key)?.is_some();
        n += i64::from(v.is_some()) - i64::from(was);
    }
    Ok(n.max(0) as u64)
}

/// Keys of `slot` (element rows not counted) as seen through `layers`
/// over `base`: the base counts its rows, and each layer corrects the
/// count for the keys it holds. No record is copied, so counting a slot
/// being imported costs no memory for its rows.
pub(crate) fn slot_len(layers: &[&Layer], base: &dyn Base, slot: u32) -> Result<u64, KvError> {
    let Some((top, below)) = layers.split_first() else {
        return base.slot_len(slot);
    };
    let (lo, hi) = slot_bounds(slot);
    let keys = top.entries.range::<[u8], _>((as_ref(&lo), as_ref(&hi)));
    if top.cleared || top.dropped.contains(&slot) {
        return Ok(keys.filter(|(_, v)| v.is_some()).count() as u64);
    }
    corrected(slot_len(below, base, slot)? as i64, keys, top, below, base)
}

/// About how many keys `layers` over `base` hold, for size estimates and
/// never for answers: the base's count (kept by redb, so no row is read)
/// and each layer's stores less its deletions. A key a layer rewrites, or
/// one of a slot a layer dropped, still counts until the layer is flushed.
pub(crate) fn approx_len(layers: &[&Layer], base: &dyn Base) -> Result<u64, KvError> {
    let Some((top, below)) = layers.split_first() else {
        return base.approx_len();
    };
    let keys = top.keys();
    let (stores, deletes) = keys.fold((0u64, 0u64), |(s, d), (_, v)| if v.is_some() { (s + 1, d) } else { (s, d + 1) });
    let under = if top.cleared { 0 } else { approx_len(below, base)? };
    Ok((under + stores).saturating_sub(deletes))
}

/// Up to `n` stored rows within the bounds, as they lie in `base` and then
/// in the layers, whatever hides or replaces them: a sample of row sizes
/// that reads no more than `n` rows, where a scan through the layers may
/// step over every row of a dropped slot first.
pub(crate) fn sample(
    layers: &[&Layer],
    base: &dyn Base,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
    n: usize,
) -> Result<Vec<(Vec<u8>, Record)>, KvError> {
    let mut out: Vec<(Vec<u8>, Record)> = base.iter_range(lower, upper)?.take(n).collect::<Result<_, _>>()?;
    for layer in layers {
        let stored = layer.entries.range::<[u8], _>((lower, upper)).filter_map(|(k, v)| Some((k.clone(), v.clone()?)));
        out.extend(stored.take(n - out.len()));
    }
    Ok(out)
}

pub(crate) use tidal_core::kv::bound_slice as as_ref;

type Source<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Option<Record>), KvError>> + 'a>;

/// Up to `limit` keys' records strictly after `after`, in key order, as
/// seen through `layers` over `base` (element rows are not keys).
pub(crate) fn scan(
    layers: &[&Layer],
    base: &dyn Base,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, Record)>, KvError> {
    let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
    scan_range(layers, base, lower, Bound::Excluded(&first_element()[..]), limit)
}

/// Up to `limit` records within the bounds, in key order, as seen through
/// `layers` over `base`: a merge of every source where the topmost one
/// holding a key decides it, and deleted keys are skipped.
pub(crate) fn scan_range(
    layers: &[&Layer],
    base: &dyn Base,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, Record)>, KvError> {
    let mut sources: Vec<Source<'_>> = Vec::with_capacity(layers.len() + 1);
    let mut reaches_base = true;
    for layer in layers {
        let it = layer.entries.range::<[u8], _>((lower, upper)).map(|(k, v)| Ok((k.clone(), v.clone())));
        sources.push(Box::new(it));
        if layer.cleared {
            reaches_base = false;
            break;
        }
    }
    if reaches_base {
        sources.push(Box::new(base.iter_range(lower, upper)?.map(|r| r.map(|(k, v)| (k, Some(v))))));
    }
    let mut heads: Vec<Option<(Vec<u8>, Option<Record>)>> = Vec::with_capacity(sources.len());
    for s in &mut sources {
        heads.push(s.next().transpose()?);
    }
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(min) = heads.iter().flatten().map(|(k, _)| k).min().cloned() else {
            break;
        };
        let mut winner: Option<(usize, Option<Record>)> = None;
        for (i, (head, source)) in heads.iter_mut().zip(&mut sources).enumerate() {
            if head.as_ref().is_some_and(|(k, _)| *k == min) {
                let (_, v) = std::mem::replace(head, source.next().transpose()?).expect("head checked above");
                // Sources are in layer order: the first one to hold the key wins.
                winner.get_or_insert((i, v));
            }
        }
        if let Some((i, Some(rec))) = winner {
            // A layer above the winning source may have dropped the key's slot.
            if !layers[..i.min(layers.len())].iter().any(|l| l.hides(&min)) {
                out.push((min, rec));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::ops::RangeBounds;

    use tidal_core::kv::{KvStore, MemStore};

    use super::*;

    impl Base for MemStore {
        fn get(&self, key: &[u8]) -> Result<Option<Record>, KvError> {
            KvStore::get(self, key)
        }
        fn iter_range<'a>(&'a self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<BaseIter<'a>, KvError> {
            let (lower, upper) = (owned(lower), owned(upper));
            Ok(Box::new(
                self.entries()
                    .filter(move |(k, _)| (lower.clone(), upper.clone()).contains(&k.to_vec()))
                    .map(|(k, v)| Ok((k.to_vec(), v.clone()))),
            ))
        }
        fn len(&self) -> Result<u64, KvError> {
            Ok(self.entries().filter(|(k, _)| !is_element(k)).count() as u64)
        }
    }

    fn owned(b: Bound<&[u8]>) -> Bound<Vec<u8>> {
        match b {
            Bound::Included(v) => Bound::Included(v.to_vec()),
            Bound::Excluded(v) => Bound::Excluded(v.to_vec()),
            Bound::Unbounded => Bound::Unbounded,
        }
    }

    /// A tiny deterministic generator, so the model test needs no RNG crate.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    /// The same writes through two layers plus a base, flushed down at
    /// random points, read exactly as the same writes on one plain map.
    #[test]
    fn layers_over_a_base_read_like_one_map() {
        for seed in 0..40u64 {
            let mut rng = Lcg(seed);
            let mut model = MemStore::new();
            let mut base = MemStore::new();
            let mut frozen = Layer::default();
            let mut active = Layer::default();
            for step in 0..400 {
                let (slot, name) = (rng.next(3) as u32, format!("k{:02}", rng.next(10)));
                let key = match rng.next(4) {
                    0 => stored_element(slot, name.as_bytes(), format!("f{}", rng.next(3)).as_bytes()),
                    _ => stored_key(slot, name.as_bytes()),
                };
                match rng.next(100) {
                    0..=49 => {
                        let rec = Record::new(format!("v{step}"));
                        model.put(&key, &rec).unwrap();
                        active.put(&key, Some(rec));
                    }
                    50..=79 => {
                        let existed = model.delete(&key).unwrap();
                        let seen = get(&[&active, &frozen], &base, &key).unwrap().is_some();
                        assert_eq!(existed, seen, "seed {seed} step {step}: existence before delete");
                        active.put(&key, None);
                    }
                    80..=81 => {
                        model.clear().unwrap();
                        active.clear();
                    }
                    90..=92 => {
                        let slot = rng.next(3) as u32;
                        let doomed: Vec<Vec<u8>> =
                            model.entries().map(|(k, _)| k.to_vec()).filter(|k| slot_of_stored(k) == slot).collect();
                        for k in doomed {
                            model.delete(&k).unwrap();
                        }
                        active.drop_slot(slot);
                    }
                    82..=89 => {
                        // Flush the frozen layer into the base, freeze the active one.
                        apply_layer(&mut base, &frozen);
                        frozen = std::mem::take(&mut active);
                    }
                    _ => {}
                }
                let layers = [&active, &frozen];
                assert_eq!(len(&layers, &base).unwrap(), Base::len(&model).unwrap(), "seed {seed} step {step}: len");
                let in_slot = model.entries().filter(|(k, _)| !is_element(k) && slot_of_stored(k) == slot).count();
                assert_eq!(
                    slot_len(&layers, &base, slot).unwrap(),
                    in_slot as u64,
                    "seed {seed} step {step}: keys of slot {slot}"
                );
                assert_eq!(
                    get(&layers, &base, &key).unwrap(),
                    KvStore::get(&model, &key).unwrap(),
                    "seed {seed} step {step}: get"
                );
                let after = (rng.next(4) > 0)
                    .then(|| stored_key(rng.next(3) as u32, format!("k{:02}", rng.next(10)).as_bytes()));
                let limit = 1 + rng.next(12) as usize;
                let keys: Vec<_> =
                    model.scan(after.as_deref(), limit).unwrap().into_iter().filter(|(k, _)| !is_element(k)).collect();
                assert_eq!(
                    scan(&layers, &base, after.as_deref(), limit).unwrap(),
                    keys,
                    "seed {seed} step {step}: scan after {after:?} limit {limit}"
                );
                let (lo, hi) = element_slot_bounds(slot);
                assert_eq!(
                    scan_range(&layers, &base, as_ref(&lo), as_ref(&hi), usize::MAX).unwrap(),
                    model
                        .scan(None, usize::MAX)
                        .unwrap()
                        .into_iter()
                        .filter(|(k, _)| is_element(k) && slot_of_stored(k) == slot)
                        .collect::<Vec<_>>(),
                    "seed {seed} step {step}: element rows of slot {slot}"
                );
            }
        }
    }

    fn apply_layer(base: &mut MemStore, layer: &Layer) {
        if layer.cleared {
            base.clear().unwrap();
        }
        let doomed: Vec<Vec<u8>> =
            base.entries().map(|(k, _)| k.to_vec()).filter(|k| layer.dropped.contains(&slot_of_stored(k))).collect();
        for k in doomed {
            base.delete(&k).unwrap();
        }
        for (k, v) in &layer.entries {
            match v {
                Some(rec) => base.put(k, rec).unwrap(),
                None => {
                    base.delete(k).unwrap();
                }
            }
        }
    }

    #[test]
    fn a_cleared_layer_hides_everything_below_it() {
        let mut base = MemStore::new();
        base.put(b"a", &Record::new("base")).unwrap();
        let mut frozen = Layer::default();
        frozen.put(b"b", Some(Record::new("frozen")));
        let mut active = Layer::default();
        active.clear();
        active.put(b"c", Some(Record::new("active")));
        let layers = [&active, &frozen];
        assert_eq!(get(&layers, &base, b"a").unwrap(), None);
        assert_eq!(get(&layers, &base, b"b").unwrap(), None);
        assert_eq!(len(&layers, &base).unwrap(), 1);
        assert_eq!(scan(&layers, &base, None, 10).unwrap(), vec![(b"c".to_vec(), Record::new("active"))]);
    }

    /// A base that counts the rows read from it.
    struct Counting {
        store: MemStore,
        read: std::cell::Cell<usize>,
    }

    impl Base for Counting {
        fn get(&self, key: &[u8]) -> Result<Option<Record>, KvError> {
            self.read.set(self.read.get() + 1);
            KvStore::get(&self.store, key)
        }
        fn iter_range<'a>(&'a self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<BaseIter<'a>, KvError> {
            let rows = Base::iter_range(&self.store, lower, upper)?;
            Ok(Box::new(rows.inspect(|_| self.read.set(self.read.get() + 1))))
        }
        fn len(&self) -> Result<u64, KvError> {
            Base::len(&self.store)
        }
    }

    #[test]
    fn a_size_estimate_reads_no_more_than_its_sample_under_a_dropped_slot() {
        let mut store = MemStore::new();
        for i in 0..1000u32 {
            store.put(&stored_key(i % 4, format!("k{i}").as_bytes()), &Record::new("v")).unwrap();
        }
        let base = Counting { store, read: Default::default() };
        let mut top = Layer::default();
        top.drop_slot(0);
        top.put(&stored_key(1, b"new"), Some(Record::new("v")));
        top.put(&stored_key(1, b"k1"), None);
        let layers = [&top];

        // Exact: slot 0's 250 rows are gone, one key added, one deleted.
        assert_eq!(len(&layers, &base).unwrap(), 750);
        assert!(base.read.get() >= 250, "the exact count reads the dropped slot");

        base.read.set(0);
        // Estimated: the dropped rows still count until the layer is
        // flushed, and nothing is read.
        assert_eq!(approx_len(&layers, &base).unwrap(), 1000);
        assert_eq!(base.read.get(), 0);
        let rows = sample(&layers, &base, Bound::Unbounded, Bound::Excluded(&first_element()[..]), 8).unwrap();
        assert_eq!(rows.len(), 8);
        assert_eq!(base.read.get(), 8);
    }
}
