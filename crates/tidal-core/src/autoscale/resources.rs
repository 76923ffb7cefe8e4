//! CPU and memory requests and limits per node, in the VPA's recommend
//! mode: from the recorded usage over a window, a lower bound (p50), a
//! target (p90 for CPU, p95 for memory, whose shortage kills where CPU's
//! only slows) and an upper bound (p95 for CPU, the peak for memory), each
//! with the VPA's 15 % safety margin. The request is the target, the limit
//! the upper bound. Nothing is applied: a recommendation for whoever sizes
//! the machines.

use serde::{Deserialize, Serialize};

use super::history::NodePoint;

/// The VPA's safety margin.
pub const MARGIN: f64 = 0.15;

/// One resource's recommendation, in its unit (millicores, bytes).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bounds {
    pub lower: u64,
    pub request: u64,
    pub limit: u64,
    /// The highest seen, without margin.
    pub peak: u64,
}

/// What one node (or every node together) should be given.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceAdvice {
    pub cpu_millicores: Option<Bounds>,
    pub memory_bytes: Option<Bounds>,
    /// Buckets of history it rests on.
    pub samples: usize,
}

/// The `q` quantile (0–1) of sorted `v`, nearest rank.
fn quantile(sorted: &[u64], q: f64) -> u64 {
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn margin(v: u64) -> u64 {
    (v as f64 * (1.0 + MARGIN)).ceil() as u64
}

fn bounds(mut v: Vec<u64>, target_q: f64, upper_q: Option<f64>) -> Option<Bounds> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let peak = *v.last().expect("not empty");
    let upper = upper_q.map_or(peak, |q| quantile(&v, q));
    Some(Bounds {
        lower: margin(quantile(&v, 0.5)),
        request: margin(quantile(&v, target_q)),
        limit: margin(upper),
        peak,
    })
}

/// The advice from `points` since `since_ms`.
pub fn advise(points: &[&NodePoint], since_ms: u64) -> ResourceAdvice {
    let recent: Vec<&&NodePoint> = points.iter().filter(|p| p.at_ms >= since_ms).collect();
    ResourceAdvice {
        cpu_millicores: bounds(recent.iter().filter_map(|p| p.cpu_millicores).collect(), 0.9, Some(0.95)),
        memory_bytes: bounds(recent.iter().filter_map(|p| p.rss_bytes).collect(), 0.95, None),
        samples: recent.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_with_the_vpas_margin() {
        // CPU 1..=100 millicores, memory 1..=100 MiB.
        let points: Vec<NodePoint> = (1..=100)
            .map(|i| NodePoint { at_ms: i * 1000, cpu_millicores: Some(i), rss_bytes: Some(i << 20) })
            .collect();
        let refs: Vec<&NodePoint> = points.iter().collect();
        let a = advise(&refs, 0);
        assert_eq!(a.samples, 100);
        let cpu = a.cpu_millicores.unwrap();
        assert_eq!((cpu.lower, cpu.request, cpu.limit, cpu.peak), (58, 104, 110, 100));
        let mem = a.memory_bytes.unwrap();
        assert_eq!(mem.request, margin(95 << 20));
        assert_eq!(mem.limit, margin(100 << 20));
        // Only the window counts.
        let late = advise(&refs, 91_000);
        assert_eq!((late.samples, late.cpu_millicores.unwrap().peak), (10, 100));
        assert_eq!(advise(&refs, 200_000).cpu_millicores, None);
    }
}
