//! The simulated campaign in every test run: seeds with faults, several
//! writers per key, every history checked, spread over the machine's
//! cores. A failing seed prints its faults, the history of each key that is
//! not linearizable, and the command that runs it again. And one seed run
//! twice must do the same thing twice.

use std::time::Duration;

use tidal_sim::campaign::{cores, run_seed, run_seeds, Scenario, SeedReport};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// The suite's scenario: the campaign's, with a shorter stretch of faults
/// and without the scale-up (its seeds run in a test of their own).
fn scenario() -> Scenario {
    Scenario { chaos: Duration::from_secs(env("TIDAL_SIM_CHAOS_SECS", 10)), scale: false, ..Scenario::default() }
}

/// The failing reports, each with the command that runs it again.
fn failures(reports: &[SeedReport], scenario: &Scenario) -> Vec<String> {
    reports
        .iter()
        .filter(|r| !r.passed() || r.acked_writes <= 50)
        .map(|r| format!("seed {} failed: {r:#?}\nreplay: {}", r.seed, scenario.replay(r.seed)))
        .collect()
}

/// Runs `seeds` from `first` on every core; the reports in seed order.
fn run_all(first: u64, seeds: u64, scenario: &Scenario) -> Vec<SeedReport> {
    run_seeds(first, seeds, cores(), scenario, |_| {})
}

#[test]
fn simulated_runs_with_faults_stay_linearizable_and_converge() {
    let (first, seeds) = (env("TIDAL_SIM_SEED", 1), env("TIDAL_SIM_SEEDS", 200));
    let scenario = scenario();
    let reports = run_all(first, seeds, &scenario);
    let failed = failures(&reports, &scenario);
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    let faults: usize = reports.iter().map(|r| r.faults.len()).sum();
    assert!(faults as u64 >= seeds, "every seed injects faults ({faults} in {seeds})");
    let ops: u64 = reports.iter().map(|r| r.ops).sum();
    println!("{seeds} seeds: {faults} faults, {ops} operations checked, none failed");
}

#[test]
fn one_seed_gives_one_run() {
    let scenario = Scenario { chaos: Duration::from_secs(6), ..Scenario::default() };
    let a = run_seed(7, &scenario);
    let b = run_seed(7, &scenario);
    assert!(!a.faults.is_empty() && a.ops > 100, "the run did something: {a:#?}");
    assert_eq!(
        (a.trace, &a.faults, a.ops, a.sim_time),
        (b.trace, &b.faults, b.ops, b.sim_time),
        "seed 7 ran differently twice (is tidal built with --cfg tokio_unstable, as .cargo/config.toml asks?)"
    );
    let c = run_seed(8, &scenario);
    assert_ne!(a.trace, c.trace, "another seed, another run");
}

/// A standby that joins while the first nodes are still forming the
/// cluster may be handed a state that names no control-plane member yet;
/// it must still find the control plane (through the node it joined by),
/// report to it, and be scaled onto.
#[test]
fn a_standby_that_joins_while_the_cluster_forms_is_scaled_onto() {
    let scenario = Scenario { chaos: Duration::ZERO, standby_at: Some(Duration::ZERO), ..Scenario::default() };
    for seed in [1, 2] {
        let r = run_seed(seed, &scenario);
        assert_eq!(r.scale.as_deref(), Some("succeeded"), "seed {seed}: {r:#?}");
    }
}

/// Seeds whose operator scales the cluster up (a standby joins; 2 PRGs
/// become 4) while the faults go on: each ends succeeded or rolled back,
/// with every history linearizable. After a scale-up that succeeded, a
/// shrink plan runs, then either a control-plane voter is drained and
/// removed or a node is lost for good and healed around.
#[test]
fn scale_ups_under_faults_end_and_lose_nothing() {
    let scenario = Scenario { scale: true, ..scenario() };
    let seeds = env("TIDAL_SIM_SCALE_SEEDS", 20);
    let reports = run_all(env("TIDAL_SIM_SEED", 1), seeds, &scenario);
    let failed = failures(&reports, &scenario);
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    let succeeded = reports.iter().filter(|r| r.scale.as_deref() == Some("succeeded")).count();
    let removed = reports.iter().filter(|r| r.drain.as_deref() == Some("drained, removed")).count();
    let healed = reports.iter().filter(|r| r.heal.as_deref().is_some_and(|h| h.starts_with("healed"))).count();
    println!(
        "{seeds} scale-ups under faults: {succeeded} succeeded, the rest rolled back; \
         {removed} voters drained and removed, {healed} lost nodes healed around"
    );
    assert!(succeeded > 0, "no scale-up succeeded: {:#?}", reports.iter().map(|r| &r.scale).collect::<Vec<_>>());
    assert!(removed > 0 && healed > 0, "{removed} drained and removed, {healed} healed: each should happen");
}
