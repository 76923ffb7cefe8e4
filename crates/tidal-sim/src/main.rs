//! `tidal-sim`: a campaign of simulated runs, one per seed.
//!
//! `cargo run -p tidal-sim --release -- --seeds 1000` runs seeds 1..=1000
//! and reports seeds per second, simulated time against real time, faults
//! injected and histories checked; each failing seed is printed with the
//! command that runs it again.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use tidal_sim::campaign::{run_seed, Scenario};

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
    /// Print every seed's faults, not only failing ones.
    #[arg(long)]
    verbose: bool,
    /// Print the whole history of every key that is not linearizable.
    #[arg(long)]
    history: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let scenario = Scenario {
        chaos: Duration::from_secs(args.chaos_secs),
        shared_keys: !args.own_keys,
        scale: !args.no_scale,
        ..Scenario::default()
    };
    let started = Instant::now();
    let (mut failed, mut faults, mut ops, mut acked, mut sim_time) = (0u64, 0usize, 0u64, 0u64, Duration::ZERO);
    let (mut samples, mut fenced, mut slot_moves) = (0u64, 0u64, 0u64);
    let mut slowest_settle = Duration::ZERO;
    let mut scale_ups: std::collections::BTreeMap<String, u64> = Default::default();
    for seed in args.from..args.from + args.seeds {
        let r = run_seed(seed, &scenario);
        faults += r.faults.len();
        ops += r.ops;
        acked += r.acked_writes;
        sim_time += r.sim_time;
        samples += r.invariant_checks;
        fenced += r.fenced_samples;
        slot_moves += r.slot_moves_ended;
        slowest_settle = slowest_settle.max(r.settled_after.unwrap_or_default());
        if r.scaled {
            *scale_ups.entry(r.scale.clone().unwrap_or_else(|| "not started".into())).or_default() += 1;
        }
        if !r.passed() || args.verbose {
            println!(
                "seed {seed}: {} ({} ops, {} acknowledged writes, {} pending, {:.1} s simulated, trace {:016x})",
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
            for v in &r.violations {
                println!("  not linearizable: {v}");
            }
            for v in &r.invariant_violations {
                println!("  invariant broken: {v}");
            }
            if args.history {
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
        }
        if !r.passed() {
            failed += 1;
            println!("  replay: {}", scenario.replay(seed));
        }
    }
    let real = started.elapsed();
    println!(
        "{} seeds in {:.1} s ({:.2} seeds/s): {} failed; {faults} faults, {ops} operations ({acked} acknowledged writes) \
         checked for linearizability; invariants sampled {samples} times; {:.0} s simulated, {:.0}x real time",
        args.seeds,
        real.as_secs_f64(),
        args.seeds as f64 / real.as_secs_f64(),
        failed,
        sim_time.as_secs_f64(),
        sim_time.as_secs_f64() / real.as_secs_f64()
    );
    println!(
        "slot moves checked to take effect once: {slot_moves} (slot × move); fenced slots sampled unchanged: {fenced} times"
    );
    println!(
        "settled after the final reads within {:.1} s of simulated time in every seed that settled",
        slowest_settle.as_secs_f64()
    );
    if !scale_ups.is_empty() {
        let ends: Vec<String> = scale_ups.iter().map(|(how, n)| format!("{n} {how}")).collect();
        println!("scale-ups: {}", ends.join(", "));
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
