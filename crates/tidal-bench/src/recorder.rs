//! Per-client counters that the reporter drains once a second.
//!
//! Each client owns one [`Recorder`] behind a mutex that only it and the
//! reporter touch, so recording costs an uncontended lock per batch.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::histogram::{Latency, LatencySummary};
use crate::workload::OpKind;

/// Successful operations by kind, and failed ones by error label.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    read: Latency,
    update: Latency,
    errors: BTreeMap<String, u64>,
}

impl Recorder {
    pub fn ok(&mut self, kind: OpKind, latency: Duration) {
        match kind {
            OpKind::Read => self.read.record(latency),
            OpKind::Update => self.update.record(latency),
        }
    }

    pub fn error(&mut self, label: String) {
        *self.errors.entry(label).or_default() += 1;
    }

    /// Moves everything recorded into `into` and starts empty again.
    pub fn drain_into(&mut self, into: &mut Recorder) {
        into.read.merge(&self.read);
        into.update.merge(&self.update);
        for (label, n) in std::mem::take(&mut self.errors) {
            *into.errors.entry(label).or_default() += n;
        }
        self.read.reset();
        self.update.reset();
    }

    pub fn ops(&self) -> u64 {
        self.read.count() + self.update.count()
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn errors(&self) -> &BTreeMap<String, u64> {
        &self.errors
    }

    pub fn latency(&self, kind: OpKind) -> &Latency {
        match kind {
            OpKind::Read => &self.read,
            OpKind::Update => &self.update,
        }
    }

    /// Latency over every successful operation.
    pub fn overall(&self) -> Latency {
        let mut all = self.read.clone();
        all.merge(&self.update);
        all
    }

    pub fn by_op(&self) -> BTreeMap<String, LatencySummary> {
        OpKind::ALL
            .iter()
            .filter(|k| self.latency(**k).count() > 0)
            .map(|k| (k.name().to_string(), self.latency(*k).summary()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_moves_everything_once() {
        let mut client = Recorder::default();
        client.ok(OpKind::Read, Duration::from_micros(100));
        client.ok(OpKind::Update, Duration::from_micros(300));
        client.error("timeout".into());
        client.error("timeout".into());
        let mut total = Recorder::default();
        client.drain_into(&mut total);
        client.drain_into(&mut total);
        assert_eq!((total.ops(), total.error_count()), (2, 2));
        assert_eq!((client.ops(), client.error_count()), (0, 0));
        assert_eq!(total.by_op().keys().collect::<Vec<_>>(), vec!["read", "update"]);
        assert_eq!(total.overall().count(), 2);
    }
}
