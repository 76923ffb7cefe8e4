//! The recorded load: every node keeps the cluster's operations a second
//! and each node's CPU and memory, averaged over 5-minute buckets, for 15
//! days, from the reports the control plane shares with it. The forecast
//! reads the operations; the resource recommendations read CPU and memory.
//! Every node keeping the same record means a new control-plane leader
//! has it already.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::ids::NodeId;

/// Width of a bucket.
pub const STEP_MS: u64 = 300_000;
/// Buckets kept: 15 days (two weeks and a day, enough for a weekly season).
pub const KEPT: usize = 15 * 288;

/// One bucket of the cluster's load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// The bucket's start.
    pub at_ms: u64,
    /// Operations a second, the bucket's average.
    pub ops: f64,
}

/// One bucket of a node's resources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodePoint {
    pub at_ms: u64,
    /// Millicores, the bucket's average.
    pub cpu_millicores: Option<u64>,
    /// Resident bytes, the bucket's peak.
    pub rss_bytes: Option<u64>,
}

/// What one sample brings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    pub ops: f64,
    pub nodes: BTreeMap<NodeId, (Option<u64>, Option<u64>)>,
}

/// Sums of the bucket being filled.
#[derive(Clone, Debug, Default)]
struct Open {
    at_ms: u64,
    samples: u64,
    ops: f64,
    nodes: BTreeMap<NodeId, (u64, u64, Option<u64>)>,
}

#[derive(Clone, Debug, Default)]
pub struct LoadHistory {
    pub points: VecDeque<Point>,
    pub nodes: BTreeMap<NodeId, VecDeque<NodePoint>>,
    open: Option<Open>,
}

impl LoadHistory {
    /// Add a sample taken at `now_ms`; a bucket closes when a sample of
    /// the next one arrives.
    pub fn record(&mut self, now_ms: u64, s: &Sample) {
        let at = now_ms - now_ms % STEP_MS;
        if self.open.as_ref().is_some_and(|o| o.at_ms != at) {
            self.close();
        }
        let open = self.open.get_or_insert_with(|| Open { at_ms: at, ..Open::default() });
        open.samples += 1;
        open.ops += s.ops;
        for (n, (cpu, rss)) in &s.nodes {
            let e = open.nodes.entry(*n).or_default();
            if let Some(c) = cpu {
                e.0 += c;
                e.1 += 1;
            }
            if let Some(r) = rss {
                e.2 = Some(e.2.map_or(*r, |m| m.max(*r)));
            }
        }
    }

    fn close(&mut self) {
        let Some(o) = self.open.take() else { return };
        self.points.push_back(Point { at_ms: o.at_ms, ops: o.ops / o.samples.max(1) as f64 });
        while self.points.len() > KEPT {
            self.points.pop_front();
        }
        for (n, (cpu, count, rss)) in o.nodes {
            let list = self.nodes.entry(n).or_default();
            let cpu_millicores = (count > 0).then(|| cpu / count);
            list.push_back(NodePoint { at_ms: o.at_ms, cpu_millicores, rss_bytes: rss });
            while list.len() > KEPT {
                list.pop_front();
            }
        }
        // Nodes gone for longer than the record is kept are forgotten.
        let oldest = self.points.front().map_or(0, |p| p.at_ms);
        self.nodes.retain(|_, l| l.back().is_some_and(|p| p.at_ms >= oldest));
    }

    /// Operations a second, one point a bucket from the oldest to the
    /// latest closed one; a bucket missed (no node reported) repeats the
    /// one before it, so the points stay evenly spaced.
    pub fn ops_series(&self) -> Vec<f64> {
        let mut out = Vec::with_capacity(self.points.len());
        let mut last: Option<Point> = None;
        for p in &self.points {
            if let Some(prev) = last {
                let gap = ((p.at_ms - prev.at_ms) / STEP_MS).saturating_sub(1);
                out.extend(std::iter::repeat_n(prev.ops, gap.min(KEPT as u64) as usize));
            }
            out.push(p.ops);
            last = Some(*p);
        }
        let over = out.len().saturating_sub(KEPT);
        out.drain(..over);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(ops: f64, cpu: u64, rss: u64) -> Sample {
        Sample { ops, nodes: [(1, (Some(cpu), Some(rss)))].into() }
    }

    #[test]
    fn buckets_average_ops_and_cpu_and_keep_the_peak_memory() {
        let mut h = LoadHistory::default();
        h.record(0, &sample(100.0, 500, 10));
        h.record(60_000, &sample(300.0, 1500, 30));
        assert!(h.points.is_empty(), "the first bucket is still open");
        h.record(STEP_MS, &sample(50.0, 100, 5));
        assert_eq!(h.points[0], Point { at_ms: 0, ops: 200.0 });
        assert_eq!(h.nodes[&1][0], NodePoint { at_ms: 0, cpu_millicores: Some(1000), rss_bytes: Some(30) });
    }

    #[test]
    fn a_missed_bucket_repeats_the_one_before() {
        let mut h = LoadHistory::default();
        h.record(0, &sample(10.0, 0, 0));
        h.record(STEP_MS, &sample(20.0, 0, 0));
        h.record(4 * STEP_MS, &sample(40.0, 0, 0));
        h.record(5 * STEP_MS, &sample(0.0, 0, 0));
        assert_eq!(h.ops_series(), vec![10.0, 20.0, 20.0, 20.0, 40.0]);
    }

    #[test]
    fn the_record_is_bounded() {
        let mut h = LoadHistory::default();
        for i in 0..(KEPT as u64 + 10) {
            h.record(i * STEP_MS, &sample(i as f64, 1, 1));
        }
        assert_eq!(h.points.len(), KEPT);
        assert_eq!(h.nodes[&1].len(), KEPT);
        assert_eq!(h.ops_series().len(), KEPT);
    }
}
