//! A few seeds of the simulated campaign in every test run: faults from the
//! seed, several writers per key, and every history checked. A failing
//! seed prints its faults, the history of each key that is not
//! linearizable, and the command that runs it again.

use tidal_sim::campaign::{run_seed, Scenario};

#[test]
fn simulated_runs_with_faults_stay_linearizable_and_converge() {
    let first: u64 = std::env::var("TIDAL_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let seeds: u64 = std::env::var("TIDAL_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let scenario = Scenario::default();
    let mut faults = 0;
    for seed in first..first + seeds {
        let r = run_seed(seed, &scenario);
        faults += r.faults.len();
        assert!(
            r.passed(),
            "seed {seed} failed: {r:#?}\nreplay: cargo run -p tidal-sim --release -- --from {seed} --seeds 1 --history"
        );
        assert!(r.acked_writes > 100, "seed {seed}: too little got through: {r:#?}");
    }
    assert!(faults as u64 >= seeds * 3, "every seed injects faults ({faults} in {seeds})");
}
