//! `tidal bench`: flags in, [`tidal_bench`] runs, summary out.

use std::io::Write;

use clap::Args;
use tidal_bench::{RawSpec, Spec};

use crate::EXIT_USAGE;

/// Exit code when verification found lost, stale or unreadable writes.
const EXIT_VERIFY_FAILED: i32 = 1;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Where to send load: resp://, etcd:// or http:// and one or more
    /// host:port, comma-separated. Clients spread over the endpoints and move
    /// to the next one when theirs fails.
    #[arg(long, default_value = "resp://127.0.0.1:6380")]
    target: String,
    /// Concurrent clients, one connection each.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Length of the run (for stress: of each step), e.g. 30s, 2m.
    #[arg(long, default_value = "10s")]
    duration: String,
    /// a (50% reads), b (95%), c (100%), write (0%), or mixed:R/W.
    #[arg(long, default_value = "a")]
    workload: String,
    /// uniform, zipfian (θ 0.99) or zipfian:THETA.
    #[arg(long, default_value = "uniform")]
    distribution: String,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Size of the keyspace.
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    /// Requests each client sends before waiting for replies.
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Open loop: total requests per second, with latency measured from each
    /// request's intended send time. Without it, clients go as fast as they can.
    #[arg(long)]
    rate: Option<u64>,
    /// normal, spike, stress or soak.
    #[arg(long, default_value = "normal")]
    scenario: String,
    /// Clients during a spike's peak (default: 10 × --clients).
    #[arg(long)]
    spike_clients: Option<usize>,
    /// Clients added per stress step (default: --clients).
    #[arg(long)]
    stress_step: Option<usize>,
    /// Most clients a stress run ramps to.
    #[arg(long, default_value_t = 1024)]
    stress_max_clients: usize,
    /// A stress step breaks when its p99 exceeds this.
    #[arg(long, default_value = "100ms")]
    stress_p99: String,
    /// A stress step breaks when more than this percentage of requests fail.
    #[arg(long, default_value_t = 1.0)]
    stress_error_pct: f64,
    /// Stamp every write, check reads, and read every written key back at the
    /// end; any lost or stale write exits with status 1.
    #[arg(long)]
    verify: bool,
    /// With --verify, also read every written key back this often during the run.
    #[arg(long)]
    verify_every: Option<String>,
    /// Limit for one request (or pipelined batch), connecting included.
    #[arg(long, default_value = "2s")]
    timeout: String,
    /// Write every key once before the measured phases.
    #[arg(long)]
    load: bool,
    /// Prefix of every key the run touches.
    #[arg(long, default_value = "bench:")]
    key_prefix: String,
    /// Tenant for http:// targets.
    #[arg(long, default_value = "default")]
    tenant: String,
    /// RNG seed, for a repeatable key sequence.
    #[arg(long)]
    seed: Option<u64>,
    /// Write the summary as JSON to this file ("-" for stdout; the human
    /// summary then goes to stderr).
    #[arg(long)]
    json: Option<String>,
}

pub fn run(a: BenchArgs) -> i32 {
    let raw = RawSpec {
        target: a.target,
        clients: a.clients,
        duration: a.duration,
        workload: a.workload,
        distribution: a.distribution,
        value_size: a.value_size,
        keys: a.keys,
        pipeline: a.pipeline,
        rate: a.rate,
        scenario: a.scenario,
        spike_clients: a.spike_clients,
        stress_step: a.stress_step.unwrap_or(a.clients),
        stress_max_clients: a.stress_max_clients,
        stress_p99: a.stress_p99,
        stress_error_pct: a.stress_error_pct,
        verify: a.verify,
        verify_every: a.verify_every,
        timeout: a.timeout,
        load: a.load,
        key_prefix: a.key_prefix,
        tenant: a.tenant,
        seed: a.seed,
    };
    let spec = match Spec::parse(&raw) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let progress: tidal_bench::Progress = std::sync::Arc::new(|line: &str| eprintln!("{line}"));
    let summary = match crate::runtime().block_on(tidal_bench::run(spec, progress)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let human = tidal_bench::render(&summary);
    match a.json.as_deref() {
        Some("-") => {
            eprint!("{human}");
            println!("{}", serde_json::to_string_pretty(&summary).expect("summary serializes"));
        }
        Some(path) => {
            print!("{human}");
            let json = serde_json::to_string_pretty(&summary).expect("summary serializes");
            if let Err(e) = std::fs::write(path, json + "\n") {
                eprintln!("error: --json {path}: {e}");
                return EXIT_USAGE;
            }
        }
        None => print!("{human}"),
    }
    let _ = std::io::stdout().flush();
    match &summary.verify {
        Some(v) if !v.passed() => EXIT_VERIFY_FAILED,
        _ => 0,
    }
}
