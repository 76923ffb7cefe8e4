//! What a run reports: the per-phase summary, the machine it ran on, and
//! the human and JSON renderings of both.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::histogram::{fmt_us, LatencySummary};
use crate::recorder::Recorder;
use crate::scenario::BreakingPoint;
use crate::spec::{Distribution, Protocol, Spec};
use crate::verify::VerifyReport;

/// The whole result of a run; `--json` writes exactly this.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub tool: String,
    pub started_at: String,
    pub machine: Machine,
    pub target: TargetInfo,
    pub workload: WorkloadInfo,
    pub phases: Vec<PhaseReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaking_point: Option<BreakingPoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storm: Option<StormReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyReport>,
}

/// The connections a storm opened at once beside the load.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StormReport {
    pub connections: usize,
    /// Opened, through their handshake and one request.
    pub established: usize,
    /// How long until the last of them was.
    pub all_within_ms: u64,
    /// Those that failed, by error.
    pub failed: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TargetInfo {
    pub protocol: Protocol,
    pub endpoints: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkloadInfo {
    pub name: String,
    pub read_pct: u8,
    pub distribution: Distribution,
    pub keys: u64,
    pub value_size: usize,
    pub pipeline: usize,
    /// SETs per update transaction (0: plain SETs).
    pub tx: usize,
    pub rate: Option<u64>,
    pub scenario: crate::spec::ScenarioKind,
    pub seed: u64,
}

impl WorkloadInfo {
    pub fn of(spec: &Spec) -> WorkloadInfo {
        WorkloadInfo {
            name: match spec.mix.name {
                "mixed" => format!("mixed:{}/{}", spec.mix.read_pct, 100 - spec.mix.read_pct),
                n => n.to_string(),
            },
            read_pct: spec.mix.read_pct,
            distribution: spec.distribution,
            keys: spec.keys,
            value_size: spec.value_size,
            pipeline: spec.pipeline,
            tx: spec.tx,
            rate: spec.rate,
            scenario: spec.scenario,
            seed: spec.seed,
        }
    }
}

/// One phase's figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PhaseReport {
    pub name: String,
    pub clients: usize,
    pub seconds: f64,
    pub ops: u64,
    pub ops_per_sec: f64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Over every successful operation.
    pub latency: LatencySummary,
    /// Per operation kind (`read`, `update`).
    pub by_op: BTreeMap<String, LatencySummary>,
}

impl PhaseReport {
    pub fn new(name: &str, clients: usize, elapsed: Duration, rec: &Recorder) -> PhaseReport {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        PhaseReport {
            name: name.to_string(),
            clients,
            seconds,
            ops: rec.ops(),
            ops_per_sec: rec.ops() as f64 / seconds,
            errors: rec.error_count(),
            errors_by_kind: rec.errors().clone(),
            latency: rec.overall().summary(),
            by_op: rec.by_op(),
        }
    }
}

/// The machine a run measured from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Machine {
    pub hostname: String,
    pub os: String,
    pub kernel: String,
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
}

impl Machine {
    /// Reads what Linux tells about this machine; unknown fields say so.
    pub fn detect() -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let field = |text: &str, name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':').or_else(|| l.split_once('=')))
                .map(|(_, v)| v.trim().trim_matches('"').to_string())
        };
        let unknown = || "unknown".to_string();
        let mem_kib: f64 = field(&read("/proc/meminfo"), "MemTotal")
            .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
            .unwrap_or(0.0);
        Machine {
            hostname: read("/proc/sys/kernel/hostname").trim().to_string(),
            os: field(&read("/etc/os-release"), "PRETTY_NAME").unwrap_or_else(unknown),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            cpu: field(&read("/proc/cpuinfo"), "model name").unwrap_or_else(unknown),
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        }
    }
}

/// The once-a-second progress line.
pub fn live_line(phase: &str, t: Duration, clients: usize, interval: &Recorder, secs: f64) -> String {
    let lat = interval.overall();
    format!(
        "[{phase}] {:>4}s  clients {clients:<5} {:>9.0} ops/s  errors {:<6} p50 {:<9} p99 {}",
        t.as_secs(),
        interval.ops() as f64 / secs.max(1e-9),
        interval.error_count(),
        fmt_us(lat.quantile_us(0.5)),
        fmt_us(lat.quantile_us(0.99)),
    )
}

/// The human summary printed at the end of a run.
pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    let w = &s.workload;
    let _ = writeln!(
        out,
        "\ntidal bench: {} {} | workload {} ({}% reads, {}) | {} keys x {} B | pipeline {}{}{}",
        format!("{:?}", s.target.protocol).to_lowercase(),
        s.target.endpoints.join(","),
        w.name,
        w.read_pct,
        match w.distribution {
            Distribution::Uniform => "uniform".to_string(),
            Distribution::Zipfian { theta } => format!("zipfian θ={theta}"),
        },
        w.keys,
        w.value_size,
        w.pipeline,
        if w.tx > 0 { format!(" | updates are MULTI/EXEC of {} SETs", w.tx) } else { String::new() },
        w.rate.map(|r| format!(" | open loop {r} ops/s")).unwrap_or_default(),
    );
    for p in &s.phases {
        let _ = writeln!(
            out,
            "\nphase {} — {} clients, {:.1}s: {:.0} ops/s, {} ok, {} errors",
            p.name, p.clients, p.seconds, p.ops_per_sec, p.ops, p.errors
        );
        let _ = writeln!(
            out,
            "  {:<8} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "op", "count", "p50", "p90", "p99", "p99.9", "max"
        );
        let rows = p.by_op.iter().map(|(k, v)| (k.as_str(), v)).chain(std::iter::once(("all", &p.latency)));
        for (name, l) in rows {
            let _ = writeln!(
                out,
                "  {:<8} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
                name,
                l.count,
                fmt_us(l.p50_us),
                fmt_us(l.p90_us),
                fmt_us(l.p99_us),
                fmt_us(l.p999_us),
                fmt_us(l.max_us)
            );
        }
        for (kind, n) in &p.errors_by_kind {
            let _ = writeln!(out, "  error {kind}: {n}");
        }
    }
    if let Some(st) = &s.storm {
        let _ = writeln!(
            out,
            "\nstorm: {} connections opened at once at the start of phase storm: {} through their handshake and \
             one request within {} ms{}",
            st.connections,
            st.established,
            st.all_within_ms,
            if st.failed.is_empty() { String::new() } else { format!(", failed: {:?}", st.failed) }
        );
    }
    if let Some(b) = &s.breaking_point {
        let _ = writeln!(
            out,
            "\nbreaking point: {} clients ({}); last good: {}",
            b.clients,
            b.reason,
            match (b.last_good_clients, b.last_good_ops_per_sec) {
                (Some(c), Some(r)) => format!("{c} clients at {r:.0} ops/s"),
                _ => "none".into(),
            }
        );
    }
    if let Some(v) = &s.verify {
        let _ = writeln!(
            out,
            "\nverify: {} acknowledged writes, {} with unknown outcome, {} reads checked, {} keys read back: \
             {} lost, {} stale, {} phantom, {} unverified — {}",
            v.acked_writes,
            v.ambiguous_writes,
            v.reads_checked,
            v.keys_checked,
            v.lost,
            v.stale,
            v.phantom,
            v.unverified,
            if v.passed() { "PASS" } else { "FAIL" }
        );
        match &v.history {
            Some(h) if h.skipped.is_some() => {
                let _ = writeln!(out, "history: not checked: {} — FAIL", h.skipped.as_deref().unwrap_or_default());
            }
            Some(h) => {
                let _ = writeln!(
                    out,
                    "history: {} operations on {} keys ({} writes with unknown outcome): {} keys not linearizable, \
                     {} undecided — {}",
                    h.ops,
                    h.keys,
                    h.pending_writes,
                    h.violations,
                    h.unknown,
                    if h.passed() { "PASS" } else { "FAIL" }
                );
                for sample in &h.samples {
                    let _ = writeln!(out, "  not linearizable: {sample}");
                }
            }
            None => {}
        }
        for (kind, n) in &v.readback_errors {
            let _ = writeln!(out, "  read-back error {kind}: {n}");
        }
        for a in &v.samples {
            let _ = writeln!(
                out,
                "  {:?} {}: expected version >= {}, read {}",
                a.kind,
                a.key,
                a.expected_at_least,
                a.observed.map_or("nothing".to_string(), |v| v.to_string())
            );
        }
    }
    let m = &s.machine;
    let _ = writeln!(
        out,
        "\nmachine: {} — {} cores ({}), {} GiB, {}, kernel {}",
        m.hostname, m.cores, m.cpu, m.memory_gib, m.os, m.kernel
    );
    out
}
