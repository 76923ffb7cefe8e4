//! What clients record, and the tallies the reporter builds from it.
//!
//! Each client appends to its own [`Samples`] behind a mutex that only it
//! and the reporter touch: an uncontended lock and a push per request. Once
//! a second the reporter moves every client's samples into a [`Recorder`]
//! with HDR histograms; a histogram per client would cost a large reset and
//! merge each second for every client.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::histogram::{Latency, LatencySummary};
use crate::workload::OpKind;

/// One client's outcomes since the reporter last collected them.
#[derive(Debug, Default)]
pub struct Samples {
    ok: Vec<(OpKind, Duration)>,
    errors: BTreeMap<String, u64>,
}

impl Samples {
    pub fn ok(&mut self, kind: OpKind, latency: Duration) {
        self.ok.push((kind, latency));
    }

    pub fn error(&mut self, label: String) {
        *self.errors.entry(label).or_default() += 1;
    }

    /// Moves every sample into `into`, keeping the buffer's capacity.
    pub fn drain_into(&mut self, into: &mut Recorder) {
        for (kind, latency) in self.ok.drain(..) {
            into.ok(kind, latency);
        }
        for (label, n) in std::mem::take(&mut self.errors) {
            *into.errors.entry(label).or_default() += n;
        }
    }
}

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
    fn samples_drain_into_histograms() {
        let mut client = Samples::default();
        client.ok(OpKind::Read, Duration::from_micros(100));
        client.error("io".into());
        let mut total = Recorder::default();
        client.drain_into(&mut total);
        client.drain_into(&mut total);
        assert_eq!((total.ops(), total.error_count()), (1, 1));
        assert_eq!(total.latency(OpKind::Read).count(), 1);
    }

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
