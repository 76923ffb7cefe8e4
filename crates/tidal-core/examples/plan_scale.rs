//! How long the placement planner takes on a large cluster: PRGS PRGs on
//! NODES nodes in 3 zones, of which the last JOINED have just joined and hold
//! nothing. Prints the time to plan and the moves planned.
//!
//! `cargo run --release -p tidal-core --example plan_scale -- [PRGS] [NODES] [JOINED]`

use std::time::Instant;

use tidal_core::ids::PrgId;
use tidal_core::planner::{place_replicas, PlanNode, PlanPrg};

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).map(|a| a.parse().expect("a number")).collect();
    let (prgs, nodes, joined) =
        (args.first().copied().unwrap_or(1000), args.get(1).copied().unwrap_or(50), args.get(2).copied().unwrap_or(2));
    let plan_nodes: Vec<PlanNode> =
        (1..=nodes).map(|i| PlanNode { id: i, zone: format!("z{}", i % 3), capacity: 1, draining: false }).collect();
    // The old nodes hold every PRG, zone by zone, round robin.
    let old: Vec<Vec<u64>> = (0..3).map(|z| (1..=nodes - joined).filter(|i| i % 3 == z).collect()).collect();
    let plan_prgs: Vec<PlanPrg> = (0..prgs)
        .map(|p| PlanPrg {
            id: PrgId::new("default", p as u32),
            // Leaders rotate over the zones.
            members: (0..3)
                .map(|z| (z + p as usize) % 3)
                .map(|z| old[z][(p as usize / 3 + 7 * z) % old[z].len()])
                .collect(),
        })
        .collect();
    let started = Instant::now();
    let layout = place_replicas(&plan_nodes, &plan_prgs).expect("a plan");
    let took = started.elapsed();
    println!(
        "{prgs} PRGs on {nodes} nodes ({joined} new): planned in {took:?}, {} replica moves, {} leader changes",
        layout.moves.len(),
        layout.leader_changes.len()
    );
}
