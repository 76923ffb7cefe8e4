//! A linearizability checker for key-value histories.
//!
//! A history is what clients saw: for each operation, when it was invoked,
//! when (if ever) it returned, and what it did or observed. The history is
//! linearizable when every operation can be given one instant between its
//! invocation and its return such that, taken in that order, the operations
//! behave like a single register per key. Keys are independent, so each
//! key's history is checked on its own (linearizability is compositional),
//! which keeps the search small.
//!
//! The search is the Wing–Gong algorithm with Lowe's memoization, the one
//! Porcupine and Knossos use:
//!
//! ```text
//!   events sorted by time:  call(a) call(b) ret(a) call(c) ret(b) ret(c)
//!                           └─ a linked list; "linearize x" lifts call(x)
//!                              and ret(x) out of it
//!   walk the list from the head:
//!     call(x): if x is legal in the current state and (linearized set,
//!              state) is new, linearize x, push it, restart at the head
//!     ret(x):  x had to be linearized by now and was not: pop the last
//!              choice, put it back, try the entry after it
//!   no ret left in the list ─► linearizable;  stack empty at a ret ─► not
//! ```
//!
//! An operation that never returned (a timeout, a dropped connection) is
//! *pending*. A pending write may have taken effect at any instant after its
//! invocation, or never: it has no return event, so nothing forces it into
//! the order, and the search may place it wherever it explains a read. A
//! pending read constrains nothing and is dropped.
//!
//! Visited (linearized set, state) pairs are remembered by a 128-bit Zobrist
//! hash of the set rather than the set itself, so memory grows with the
//! number of states visited, not with their size. Two different sets share a
//! hash with probability about n²/2¹²⁸ for n states visited; a collision
//! could only make the checker miss a legal order (a false alarm), never
//! accept an illegal one.
//!
//! The search is exponential in the worst case (many long-running concurrent
//! operations on one key); a step budget turns such a key into
//! [`KeyVerdict::Unknown`] instead of a hang.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;
use std::hash::Hash;

/// What an operation did to its key's register, or saw in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action<V> {
    /// Set the register; `None` deletes the key.
    Write(Option<V>),
    /// Read the register; `None` means the key was missing.
    Read(Option<V>),
}

/// One operation as a client saw it. Times are in any unit shared by every
/// client of the history (nanoseconds from a common origin, simulated
/// ticks); an operation that returned before another was invoked must have
/// a smaller `ret` than the other's `call`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op<V> {
    pub call: u64,
    /// `None` while the outcome is unknown (the operation is pending).
    pub ret: Option<u64>,
    pub action: Action<V>,
}

impl<V> Op<V> {
    pub fn write(call: u64, ret: Option<u64>, value: Option<V>) -> Op<V> {
        Op { call, ret, action: Action::Write(value) }
    }

    pub fn read(call: u64, ret: Option<u64>, observed: Option<V>) -> Op<V> {
        Op { call, ret, action: Action::Read(observed) }
    }

    fn overlaps(&self, other: &Op<V>) -> bool {
        let (a_end, b_end) = (self.ret.unwrap_or(u64::MAX), other.ret.unwrap_or(u64::MAX));
        self.call <= b_end && other.call <= a_end
    }
}

/// Search steps allowed per key before it is reported as unknown.
pub const DEFAULT_STEP_BUDGET: u64 = 20_000_000;

/// How many operations around a violation a report quotes.
const CONTEXT_LIMIT: usize = 16;

/// The outcome of checking one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyVerdict<V> {
    Linearizable,
    /// No order of the operations explains what clients saw.
    Violation(Violation<V>),
    /// The search ran out of its step budget.
    Unknown,
}

/// Why a key's history is not linearizable: the deepest point the search
/// reached, and the operation that no order could place by its return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation<V> {
    /// Operations in the key's history (pending reads excluded).
    pub ops: usize,
    /// The most operations any explored order managed to linearize.
    pub linearized: usize,
    /// The operation whose return came before any order could fit it.
    pub stuck: Op<V>,
    /// Operations overlapping `stuck` in time, in invocation order.
    pub context: Vec<Op<V>>,
}

/// Checks one key's operations, starting from `initial` (`None`: missing).
pub fn check_key<V>(initial: Option<V>, ops: &[Op<V>], budget: u64) -> KeyVerdict<V>
where
    V: Clone + Eq + Hash + Debug,
{
    // Pending reads constrain nothing.
    let ops: Vec<&Op<V>> = ops.iter().filter(|op| op.ret.is_some() || matches!(op.action, Action::Write(_))).collect();
    let mut search = Search::new(&ops);
    match search.run(initial, budget) {
        Outcome::Linearizable => KeyVerdict::Linearizable,
        Outcome::Unknown => KeyVerdict::Unknown,
        Outcome::Stuck { op, linearized } => {
            let stuck = ops[op].clone();
            let mut context: Vec<Op<V>> =
                ops.iter().filter(|o| **o != &stuck && o.overlaps(&stuck)).map(|o| (*o).clone()).collect();
            context.sort_by_key(|o| o.call);
            context.truncate(CONTEXT_LIMIT);
            KeyVerdict::Violation(Violation { ops: ops.len(), linearized, stuck, context })
        }
    }
}

/// Every key's verdict, and the totals a report prints.
#[derive(Debug, Clone)]
pub struct HistoryReport<K, V> {
    pub keys: u64,
    pub ops: u64,
    pub pending_writes: u64,
    /// Keys whose search ran out of budget.
    pub unknown: Vec<K>,
    pub violations: Vec<(K, Violation<V>)>,
}

impl<K, V> HistoryReport<K, V> {
    /// True when every key was checked and found linearizable.
    pub fn passed(&self) -> bool {
        self.violations.is_empty() && self.unknown.is_empty()
    }
}

/// Checks a whole history, key by key. Every key starts missing.
pub fn check_history<K, V>(history: BTreeMap<K, Vec<Op<V>>>, budget: u64) -> HistoryReport<K, V>
where
    K: Ord + Clone,
    V: Clone + Eq + Hash + Debug,
{
    let mut report = HistoryReport { keys: 0, ops: 0, pending_writes: 0, unknown: Vec::new(), violations: Vec::new() };
    for (key, ops) in history {
        report.keys += 1;
        report.ops += ops.len() as u64;
        report.pending_writes +=
            ops.iter().filter(|op| op.ret.is_none() && matches!(op.action, Action::Write(_))).count() as u64;
        match check_key(None, &ops, budget) {
            KeyVerdict::Linearizable => {}
            KeyVerdict::Unknown => report.unknown.push(key),
            KeyVerdict::Violation(v) => report.violations.push((key, v)),
        }
    }
    report
}

enum Outcome {
    Linearizable,
    Unknown,
    Stuck { op: usize, linearized: usize },
}

/// An entry of the event list: the call or the return of operation `op`.
#[derive(Clone, Copy)]
struct Entry {
    op: usize,
    is_return: bool,
}

/// The event list as index links; slot `head` is a sentinel.
struct Search<'a, V> {
    ops: &'a [&'a Op<V>],
    entries: Vec<Entry>,
    next: Vec<usize>,
    prev: Vec<usize>,
    /// Per operation: its call entry and its return entry (if it returned).
    call_of: Vec<usize>,
    ret_of: Vec<Option<usize>>,
    /// Per operation: the two halves of its Zobrist key.
    zobrist: Vec<(u64, u64)>,
    head: usize,
}

/// Marks the end of the list.
const NIL: usize = usize::MAX;

impl<'a, V: Clone + Eq + Hash> Search<'a, V> {
    fn new(ops: &'a [&'a Op<V>]) -> Search<'a, V> {
        let mut entries: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            entries.push((op.call, false, i));
            if let Some(ret) = op.ret {
                // A return never precedes its own call, even with a skewed clock.
                entries.push((ret.max(op.call), true, i));
            }
        }
        // At equal times calls sort first: operations that touch at an
        // instant count as concurrent, which never rejects a legal history.
        entries.sort_unstable_by_key(|&(time, is_return, op)| (time, is_return, op));
        let n = entries.len();
        let head = n;
        let mut call_of = vec![0; ops.len()];
        let mut ret_of = vec![None; ops.len()];
        for (at, &(_, is_return, op)) in entries.iter().enumerate() {
            if is_return {
                ret_of[op] = Some(at);
            } else {
                call_of[op] = at;
            }
        }
        // Entries 0..n in order, then the head, which links to entry 0.
        let mut next: Vec<usize> = (1..=n).collect();
        if let Some(last) = next.last_mut() {
            *last = NIL;
        }
        next.push(if n == 0 { NIL } else { 0 });
        let prev: Vec<usize> = (0..=n)
            .map(|at| {
                if at == 0 {
                    head
                } else if at == head {
                    NIL
                } else {
                    at - 1
                }
            })
            .collect();
        Search {
            ops,
            entries: entries.into_iter().map(|(_, is_return, op)| Entry { op, is_return }).collect(),
            next,
            prev,
            call_of,
            ret_of,
            zobrist: (0..ops.len() as u64).map(|i| (splitmix(i * 2), splitmix(i * 2 + 1))).collect(),
            head,
        }
    }

    fn unlink(&mut self, at: usize) {
        let (p, n) = (self.prev[at], self.next[at]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    /// Puts an entry back where it was; undoes `unlink` in reverse order.
    fn relink(&mut self, at: usize) {
        let (p, n) = (self.prev[at], self.next[at]);
        self.next[p] = at;
        if n != NIL {
            self.prev[n] = at;
        }
    }

    fn lift(&mut self, op: usize) {
        self.unlink(self.call_of[op]);
        if let Some(r) = self.ret_of[op] {
            self.unlink(r);
        }
    }

    fn unlift(&mut self, op: usize) {
        if let Some(r) = self.ret_of[op] {
            self.relink(r);
        }
        self.relink(self.call_of[op]);
    }

    fn run(&mut self, initial: Option<V>, budget: u64) -> Outcome {
        let mut open_returns = self.ret_of.iter().filter(|r| r.is_some()).count();
        let mut state = initial;
        let mut hash = (0u64, 0u64);
        let mut seen: HashSet<((u64, u64), Option<V>)> = HashSet::new();
        let mut stack: Vec<(usize, Option<V>)> = Vec::new();
        let mut deepest = (0, 0);
        let mut entry = self.next[self.head];
        let mut steps = 0u64;
        while open_returns > 0 {
            steps += 1;
            if steps > budget {
                return Outcome::Unknown;
            }
            // A return is always ahead while one is open, so the walk
            // meets it before the end of the list.
            let Entry { op, is_return } = self.entries[entry];
            if !is_return {
                let after = match &self.ops[op].action {
                    Action::Write(v) => Some(v.clone()),
                    Action::Read(seen_value) => (*seen_value == state).then(|| state.clone()),
                };
                if let Some(after) = after {
                    let (a, b) = self.zobrist[op];
                    let key = ((hash.0 ^ a, hash.1 ^ b), after);
                    if !seen.contains(&key) {
                        seen.insert(key.clone());
                        hash = key.0;
                        stack.push((op, std::mem::replace(&mut state, key.1)));
                        self.lift(op);
                        if self.ret_of[op].is_some() {
                            open_returns -= 1;
                        }
                        entry = self.next[self.head];
                        continue;
                    }
                }
                entry = self.next[entry];
            } else {
                if stack.len() >= deepest.0 {
                    deepest = (stack.len(), op);
                }
                let Some((undo, before)) = stack.pop() else {
                    return Outcome::Stuck { op: deepest.1, linearized: deepest.0 };
                };
                let (a, b) = self.zobrist[undo];
                hash = (hash.0 ^ a, hash.1 ^ b);
                state = before;
                self.unlift(undo);
                if self.ret_of[undo].is_some() {
                    open_returns += 1;
                }
                entry = self.next[self.call_of[undo]];
            }
        }
        Outcome::Linearizable
    }
}

/// A fixed, well-mixed 64-bit value per input: the Zobrist keys are the same
/// in every run, so a check is reproducible.
fn splitmix(i: u64) -> u64 {
    let mut z = i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
#[path = "linearizability_tests.rs"]
mod tests;
