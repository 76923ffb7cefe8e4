//! What a node measures of its own load for the autoscaler: commands and
//! PRG operations a second, CPU and memory, the 99th percentile of the
//! time requests take, replication lag and connections. Rates are taken
//! between two reports at least [`WINDOW`] apart; the figures between
//! are those of the last window.
//!
//! The data path only bumps counters: one relaxed add per request for its
//! PRG, and one for the latency bucket it falls in ([`Latencies`]).
//! CPU and memory come from an injectable [`Usage`]: `/proc` for the
//! binary, nothing in a simulation (whose figures must not depend on the
//! machine running it).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tidal_core::autoscale::signals::NodeLoad;
use tidal_core::PrgId;
use tokio::time::Instant;

/// The shortest interval a rate is measured over.
pub const WINDOW: Duration = Duration::from_secs(1);

/// The process's resource usage at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageSample {
    /// CPU time used since the process started, ns.
    pub cpu_ns: Option<u64>,
    pub rss_bytes: Option<u64>,
    /// Memory of the machine.
    pub memory_bytes: Option<u64>,
    /// Cores the process may use.
    pub cores: u32,
}

/// Where CPU and memory figures come from.
pub trait Usage: Send + Sync + 'static {
    fn sample(&self) -> UsageSample;
}

/// No figures (a simulated host).
pub struct NoUsage;

impl Usage for NoUsage {
    fn sample(&self) -> UsageSample {
        UsageSample::default()
    }
}

/// This process, from Linux's `/proc` (no figures elsewhere).
pub struct ProcUsage;

/// Linux's `USER_HZ`: the unit of `/proc/self/stat`'s CPU times.
const TICKS_PER_SECOND: u64 = 100;

impl Usage for ProcUsage {
    fn sample(&self) -> UsageSample {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let status = std::fs::read_to_string("/proc/self/status").ok();
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
        UsageSample {
            cpu_ns: stat.as_deref().and_then(cpu_ns),
            rss_bytes: status.as_deref().and_then(|s| kib_field(s, "VmRSS:")),
            memory_bytes: meminfo.as_deref().and_then(|s| kib_field(s, "MemTotal:")),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        }
    }
}

/// User plus system time from `/proc/self/stat` (fields 14 and 15, counted
/// after the command name, which may itself hold spaces).
fn cpu_ns(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) * (1_000_000_000 / TICKS_PER_SECOND))
}

/// A `Name:   123 kB` line of `/proc`, in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kib: u64 = line[name.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

/// Buckets of [`Latencies`]: four a power of two, up to 2^32 µs.
pub const BUCKETS: usize = 4 * 33;

/// A histogram of request times that the data path fills with one relaxed
/// add: four buckets a power of two of microseconds (each within 19 % of
/// its neighbour).
pub struct Latencies {
    counts: [AtomicU64; BUCKETS],
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies { counts: std::array::from_fn(|_| AtomicU64::new(0)) }
    }
}

/// The bucket of `us` microseconds.
fn bucket(us: u64) -> usize {
    if us < 4 {
        return us as usize;
    }
    let msb = 63 - us.leading_zeros() as usize;
    let quarter = ((us >> (msb - 2)) & 3) as usize;
    (msb * 4 + quarter).min(BUCKETS - 1)
}

/// The largest time bucket `i` holds, µs.
fn bucket_top(i: usize) -> u64 {
    if i < 4 {
        return i as u64;
    }
    let (msb, quarter) = (i / 4, (i % 4) as u64);
    (1u64 << msb) + ((quarter + 1) << (msb - 2)) - 1
}

impl Latencies {
    pub fn record(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.counts[bucket(us)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> [u64; BUCKETS] {
        std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed))
    }
}

/// Bounds of the exported request-time histogram, in seconds.
const EXPORT_BOUNDS_S: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// `tidal_request_duration_seconds`: the request times of a [`Latencies`]
/// snapshot as a Prometheus histogram (each bucket counted under the
/// first bound at or above its top; its sum from the buckets' tops).
#[derive(Debug)]
pub struct LatencyCollector(pub [u64; BUCKETS]);

impl prometheus_client::collector::Collector for LatencyCollector {
    fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        let mut cumulative = [0u64; EXPORT_BOUNDS_S.len()];
        let (mut count, mut sum) = (0u64, 0.0f64);
        for (i, n) in self.0.iter().enumerate().filter(|(_, n)| **n > 0) {
            let top_s = bucket_top(i) as f64 / 1e6;
            count += n;
            sum += top_s * *n as f64;
            for (j, bound) in EXPORT_BOUNDS_S.iter().enumerate() {
                if top_s <= *bound {
                    cumulative[j] += n;
                }
            }
        }
        let buckets: Vec<(f64, u64)> = EXPORT_BOUNDS_S.iter().copied().zip(cumulative).collect();
        let e = encoder.encode_descriptor(
            "tidal_request_duration_seconds",
            "Time client requests took on the PRGs this node leads",
            None,
            prometheus_client::metrics::MetricType::Histogram,
        )?;
        HistogramSnapshot { sum, count, buckets }.encode(e)
    }
}

/// A histogram's figures, encoded as one.
#[derive(Debug)]
struct HistogramSnapshot {
    sum: f64,
    count: u64,
    buckets: Vec<(f64, u64)>,
}

impl prometheus_client::encoding::EncodeMetric for HistogramSnapshot {
    fn encode(&self, mut encoder: prometheus_client::encoding::MetricEncoder) -> Result<(), std::fmt::Error> {
        // The encoder wants per-bucket counts, as it accumulates them.
        let mut last = 0;
        let mut per_bucket = Vec::with_capacity(self.buckets.len() + 1);
        for (b, c) in &self.buckets {
            per_bucket.push((*b, c - last));
            last = *c;
        }
        per_bucket.push((f64::MAX, self.count - last));
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(self.sum, self.count, &per_bucket, None)
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Histogram
    }
}

/// The `q` quantile (0–1) of the requests counted between two snapshots,
/// as the top of its bucket; `None` with no request between them.
fn quantile(before: &[u64; BUCKETS], after: &[u64; BUCKETS], q: f64) -> Option<u64> {
    let counts: Vec<u64> = after.iter().zip(before).map(|(a, b)| a.saturating_sub(*b)).collect();
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64 * q).ceil() as u64).max(1);
    let mut seen = 0;
    for (i, c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return Some(bucket_top(i));
        }
    }
    None
}

/// The counters a node exposes to its meter at one instant.
pub struct Counters {
    pub commands: u64,
    /// Requests answered with an error of the cluster's making.
    pub errors: u64,
    /// Operations each PRG this node leads has executed (its counter).
    pub prg_ops: BTreeMap<PrgId, u64>,
    pub latencies: [u64; BUCKETS],
    pub usage: UsageSample,
}

/// Turns counters read at successive reports into rates.
#[derive(Default)]
pub struct LoadMeter {
    previous: Option<(Instant, Counters)>,
    last: NodeLoad,
}

impl LoadMeter {
    /// The load at `now`, given the counters then; the last window's rates
    /// until [`WINDOW`] has passed since the last one was measured.
    /// `lag` and `connections` are figures of the instant.
    pub fn measure(&mut self, now: Instant, c: Counters, lag: u64, connections: u64) -> NodeLoad {
        self.last.replication_lag = lag;
        self.last.connections = connections;
        self.last.cores = c.usage.cores;
        self.last.rss_bytes = c.usage.rss_bytes;
        self.last.memory_bytes = c.usage.memory_bytes;
        let Some((then, before)) = &self.previous else {
            self.previous = Some((now, c));
            return self.last.clone();
        };
        let elapsed = now.saturating_duration_since(*then);
        if elapsed < WINDOW {
            return self.last.clone();
        }
        let secs = elapsed.as_secs_f64();
        let per_second = |after: u64, before: u64| (after.saturating_sub(before) as f64 * 1000.0 / secs).round() as u64;
        self.last.ops_milli = per_second(c.commands, before.commands);
        self.last.errors_milli = per_second(c.errors, before.errors);
        self.last.prg_ops_milli = c
            .prg_ops
            .iter()
            .map(|(p, n)| (p.clone(), per_second(*n, before.prg_ops.get(p).copied().unwrap_or(*n))))
            .collect();
        self.last.cpu_millicores = c.usage.cpu_ns.zip(before.usage.cpu_ns).map(|(a, b)| {
            // ns of CPU a second of wall time, in thousandths of a core.
            (a.saturating_sub(b) as f64 / 1_000_000.0 / secs).round() as u64
        });
        self.last.p50_us = quantile(&before.latencies, &c.latencies, 0.5);
        self.last.p95_us = quantile(&before.latencies, &c.latencies, 0.95);
        self.last.p99_us = quantile(&before.latencies, &c.latencies, 0.99);
        self.previous = Some((now, c));
        self.last.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_tight() {
        let mut last = 0;
        for us in 0..100_000u64 {
            let b = bucket(us);
            assert!(b >= last, "bucket of {us}");
            assert!(bucket_top(b) >= us, "{us} above its bucket's top {}", bucket_top(b));
            // Within 25 % above the value (a quarter of a power of two).
            assert!(bucket_top(b) <= us + us / 4 + 1, "{us}: top {}", bucket_top(b));
            last = b;
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn p99_of_a_window() {
        let l = Latencies::default();
        let before = l.snapshot();
        for _ in 0..990 {
            l.record(Duration::from_micros(100));
        }
        for _ in 0..10 {
            l.record(Duration::from_millis(20));
        }
        let after = l.snapshot();
        // The 990th of 1000 is a 100 µs request; the 991st a 20 ms one.
        let p99 = quantile(&before, &after, 0.99).unwrap();
        assert!((100..=127).contains(&p99), "{p99}");
        let p999 = quantile(&before, &after, 0.999).unwrap();
        assert!((20_000..=25_000).contains(&p999), "{p999}");
        assert_eq!(quantile(&after, &after, 0.99), None);
    }

    #[test]
    fn proc_figures_parse() {
        let stat = "4242 (tidal node x) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 8 0";
        assert_eq!(cpu_ns(stat), Some(300 * 10_000_000));
        assert_eq!(kib_field("Name:\tx\nVmRSS:\t  2048 kB\n", "VmRSS:"), Some(2 << 20));
        assert_eq!(kib_field("Name:\tx\n", "VmRSS:"), None);
    }

    #[test]
    fn rates_wait_for_a_whole_window() {
        let mut m = LoadMeter::default();
        let prg = PrgId::new("default", 0);
        let counters = |commands: u64, ops: u64, cpu_s: u64| Counters {
            commands,
            errors: commands / 100,
            prg_ops: [(prg.clone(), ops)].into(),
            latencies: [0; BUCKETS],
            usage: UsageSample { cpu_ns: Some(cpu_s * 1_000_000_000), cores: 2, ..UsageSample::default() },
        };
        let t0 = Instant::now();
        assert_eq!(m.measure(t0, counters(0, 0, 0), 3, 5).ops_milli, 0);
        // Half a second on: still the first (empty) window's figures.
        assert_eq!(m.measure(t0 + Duration::from_millis(500), counters(400, 100, 1), 3, 5).ops_milli, 0);
        let l = m.measure(t0 + Duration::from_secs(2), counters(3000, 1000, 3), 4, 6);
        assert_eq!(l.ops_milli, 1_500_000);
        assert_eq!(l.errors_milli, 15_000);
        assert_eq!(l.prg_ops_milli[&prg], 500_000);
        // 3 s of CPU over 2 s of wall time: 1.5 cores.
        assert_eq!(l.cpu_millicores, Some(1500));
        assert_eq!((l.replication_lag, l.connections, l.cores), (4, 6, 2));
        assert_eq!(l.p99_us, None);
    }
}
