//! `tidal-sim`: a campaign of simulated runs, one per seed.
//!
//! `cargo run -p tidal-sim --release -- --seeds 1000` runs seeds 1..=1000,
//! one per core at a time, and reports seeds per second, simulated time
//! against real time, faults injected, invariants sampled and histories
//! checked; each failing seed is printed with the command that runs it
//! again.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use tidal_sim::campaign::{cores, run_seeds, Scenario, SeedReport};

#[derive(Parser)]
#[command(about = "Run tidal clusters under deterministic simulation, one per seed")]
struct Args {
    /// How many seeds to run.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    from: u64,
    /// Simulated seconds of faults per seed.
    #[arg(long, default_value_t = 20)]
    chaos_secs: u64,
    /// Give each client keys of its own (one writer per key) instead of
    /// sharing them.
    #[arg(long)]
    own_keys: bool,
    /// Run without the scale-up (and its standby node).
    #[arg(long)]
    no_scale: bool,
    /// Run the scale-up without the shrink plan after it.
    #[arg(long)]
    no_shrink: bool,
    /// Run the shrink plan without what follows it: draining and removing
    /// a control-plane voter, or losing a node and healing around it.
    #[arg(long)]
    no_drain: bool,
    /// Log the nodes' events to stderr, filtered as RUST_LOG is (e.g.
    /// `--log tidal_control=info`); best with one seed.
    #[arg(long)]
    log: Option<String>,
    /// Print every seed's faults, not only failing ones.
    #[arg(long)]
    verbose: bool,
    /// Print the whole history of every key that is not linearizable.
    #[arg(long)]
    history: bool,
    /// Seeds run at once, each on a thread of its own (default: one per
    /// core). A seed runs the same on any thread.
    #[arg(long)]
    jobs: Option<usize>,
}

/// The allocator the `tidal` binary runs on. A simulated cluster allocates
/// and frees on every step: a campaign runs about a quarter faster on it
/// than on the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(filter) = &args.log {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_timer(SimTime)
            .with_writer(std::io::stderr)
            .init();
    }
    let scenario = Scenario {
        chaos: Duration::from_secs(args.chaos_secs),
        shared_keys: !args.own_keys,
        scale: !args.no_scale,
        shrink: !args.no_shrink,
        drain: !args.no_drain,
        ..Scenario::default()
    };
    let started = Instant::now();
    let done = AtomicU64::new(0);
    let reports = run_seeds(args.from, args.seeds, args.jobs.unwrap_or_else(cores), &scenario, |r| {
        if !r.passed() || args.verbose {
            print_report(r, &scenario, args.history);
        }
        let done = done.fetch_add(1, Ordering::Relaxed) + 1;
        if done & 511 == 0 {
            eprintln!("{done} seeds run in {:.0} s", started.elapsed().as_secs_f64());
        }
    });
    let failed = reports.iter().filter(|r| !r.passed()).count();
    let faults: usize = reports.iter().map(|r| r.faults.len()).sum();
    let ops: u64 = reports.iter().map(|r| r.ops).sum();
    let acked: u64 = reports.iter().map(|r| r.acked_writes).sum();
    let sim_time: Duration = reports.iter().map(|r| r.sim_time).sum();
    let samples: u64 = reports.iter().map(|r| r.invariant_checks).sum();
    let fenced: u64 = reports.iter().map(|r| r.fenced_samples).sum();
    let slot_moves: u64 = reports.iter().map(|r| r.slot_moves_ended).sum();
    let slowest_settle = reports.iter().filter_map(|r| r.settled_after).max().unwrap_or_default();
    let mut scale_ups: std::collections::BTreeMap<String, u64> = Default::default();
    for r in reports.iter().filter(|r| r.scaled) {
        *scale_ups.entry(r.scale.clone().unwrap_or_else(|| "not started".into())).or_default() += 1;
    }
    let mut shrinks: std::collections::BTreeMap<String, u64> = Default::default();
    let mut drains: std::collections::BTreeMap<String, u64> = Default::default();
    let mut heals: std::collections::BTreeMap<String, u64> = Default::default();
    for r in &reports {
        if let Some(how) = &r.heal {
            // "healed 12.3 s after node 2 was lost": tallied without the figures.
            let how = if how.starts_with("healed") { "healed" } else { how.as_str() };
            *heals.entry(how.to_string()).or_default() += 1;
        }
        if let Some(how) = &r.shrink {
            *shrinks.entry(how.clone()).or_default() += 1;
        }
        if let Some(how) = &r.drain {
            *drains.entry(how.clone()).or_default() += 1;
        }
    }
    let real = started.elapsed();
    let threads = args.jobs.unwrap_or_else(cores).clamp(1, args.seeds.max(1) as usize);
    println!(
        "{} seeds in {:.1} s ({:.2} seeds/s): {} failed; {faults} faults, {ops} operations ({acked} acknowledged writes) \
         checked for linearizability; invariants sampled {samples} times; {:.0} s simulated, {:.0}x real time \
         ({threads} threads, {:.0}x per thread)",
        args.seeds,
        real.as_secs_f64(),
        args.seeds as f64 / real.as_secs_f64(),
        failed,
        sim_time.as_secs_f64(),
        sim_time.as_secs_f64() / real.as_secs_f64(),
        sim_time.as_secs_f64() / real.as_secs_f64() / threads as f64
    );
    println!(
        "slot moves checked to take effect once: {slot_moves} (slot × move); fenced slots sampled unchanged: {fenced} times"
    );
    println!(
        "settled after the final reads within {:.1} s of simulated time in every seed that settled",
        slowest_settle.as_secs_f64()
    );
    print_tally("scale-ups", &scale_ups);
    print_tally("shrink plans", &shrinks);
    print_tally("drains of a control-plane voter", &drains);
    print_tally("nodes lost for good and healed around", &heals);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Log lines are stamped with simulated seconds.
struct SimTime;

impl tracing_subscriber::fmt::time::FormatTime for SimTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        write!(w, "{:>8.3}s", turmoil::sim_elapsed().unwrap_or_default().as_secs_f64())
    }
}

/// Prints what seed `r` did, and how to run it again if it failed.
/// How many runs ended each way, if any ran.
fn print_tally(what: &str, ends: &std::collections::BTreeMap<String, u64>) {
    if !ends.is_empty() {
        let ends: Vec<String> = ends.iter().map(|(how, n)| format!("{n} {how}")).collect();
        println!("{what}: {}", ends.join(", "));
    }
}

fn print_report(r: &SeedReport, scenario: &Scenario, history: bool) {
    println!(
        "seed {}: {} ({} ops, {} acknowledged writes, {} pending, {:.1} s simulated, trace {:016x})",
        r.seed,
        if r.passed() { "ok" } else { "FAILED" },
        r.ops,
        r.acked_writes,
        r.pending_writes,
        r.sim_time.as_secs_f64(),
        r.trace
    );
    for f in &r.faults {
        println!("  fault {f}");
    }
    if r.scaled {
        println!(
            "  scale-up: {} (the standby started at {:.2}s)",
            r.scale.as_deref().unwrap_or("not started"),
            r.standby_after.as_secs_f64()
        );
    }
    if let Some(how) = &r.shrink {
        println!("  shrink plan: {how}");
    }
    if let Some(how) = &r.drain {
        println!("  drain of a control-plane voter: {how}");
    }
    if let Some(how) = &r.heal {
        println!("  lost node: {how}");
    }
    for v in &r.violations {
        println!("  not linearizable: {v}");
    }
    for v in &r.invariant_violations {
        println!("  invariant broken: {v}");
    }
    if history {
        for line in &r.failing_histories {
            println!("    {line}");
        }
    }
    if let Some(s) = &r.stuck {
        println!("  did not converge: {s}");
    }
    if let Some(s) = &r.unsettled {
        println!("  {s}");
    }
    if r.undecided > 0 {
        println!("  {} keys undecided", r.undecided);
    }
    if !r.passed() {
        println!("  replay: {}", scenario.replay(r.seed));
    }
}
