//! `tidal capacity --growth 15%/mo --months 12`: the runbook's capacity
//! table (timeline, load, nodes, PRGs, memory per node) from today's
//! measured load and data and the policy's targets
//! (`tidal_core::autoscale::capacity`). `--current-load`, `--data-size`
//! and the `--target-*` flags stand in for what the cluster would say, so
//! the planner also works without one.
//!
//! `tidal autoscale calibrate --from bench.json` turns a measured breaking
//! point (`tidal bench --scenario stress --json`) into the per-node and
//! per-PRG targets, at a safety margin below it.

use std::path::PathBuf;

use serde_json::{json, Value};
use tidal_core::autoscale::capacity::{parse_growth, plan, CapacityInput};
use tidal_core::autoscale::Policy;

use crate::moves::{call_quietly, mib, Target};
use crate::EXIT_USAGE;

#[derive(clap::Args)]
pub struct CapacityArgs {
    /// Growth a month: `15%/mo`, `15%` or `0.15`.
    #[arg(long)]
    growth: String,
    /// Months to plan ahead.
    #[arg(long, default_value_t = 12)]
    months: u32,
    /// Operations a second now (default: what the cluster measures).
    #[arg(long)]
    current_load: Option<f64>,
    /// Data stored now, one replica's worth: bytes, or with KiB, MiB, GiB
    /// or TiB (default: what the cluster measures).
    #[arg(long)]
    data_size: Option<String>,
    /// Operations a second a PRG should carry (default: the policy's first
    /// tenant target).
    #[arg(long)]
    target_per_prg: Option<f64>,
    /// Operations a second a node should carry (default: the policy's
    /// `ops_per_node` target).
    #[arg(long)]
    target_per_node: Option<f64>,
    /// Memory of a node, GiB (default: what the nodes report, else 8).
    #[arg(long)]
    node_memory_gib: Option<f64>,
    /// Share of a node's memory data may fill (default: the policy's
    /// `maxDataFill`, else 0.7).
    #[arg(long)]
    max_data_fill: Option<f64>,
    #[command(flatten)]
    target: Target,
}

/// `50GiB`, `1.5 TiB`, `1024`: bytes.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let units = [("TiB", 1u64 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1)];
    let (num, unit) = units.iter().find_map(|(u, m)| t.strip_suffix(u).map(|n| (n.trim(), *m))).unwrap_or((t, 1));
    let v: f64 = num.parse().map_err(|_| format!("'{s}' is not a size (e.g. 50GiB)"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("'{s}' is not a size (e.g. 50GiB)"));
    }
    Ok((v * unit as f64).round() as u64)
}

/// The ops-per-node target of a policy, and its first tenant's per-PRG one.
fn policy_targets(p: &Policy) -> (Option<f64>, Option<f64>) {
    let per_node = p.metrics.iter().find_map(|m| {
        (m.metric_name() == Some("ops_per_node")).then(|| m.target().and_then(|t| t.average_value)).flatten()
    });
    let per_prg = p.tenants.values().find_map(|t| t.target_per_prg.ops);
    (per_node, per_prg)
}

fn usage(why: String) -> i32 {
    eprintln!("error: {why}");
    EXIT_USAGE
}

pub fn run(a: CapacityArgs) -> i32 {
    let growth = match parse_growth(&a.growth) {
        Ok(g) => g,
        Err(e) => return usage(format!("--growth: {e}")),
    };
    let data_size = match a.data_size.as_deref().map(parse_size).transpose() {
        Ok(d) => d,
        Err(e) => return usage(format!("--data-size: {e}")),
    };
    if let Some(f) = a.max_data_fill.filter(|f| !(*f > 0.0 && *f <= 1.0)) {
        return usage(format!("--max-data-fill must be in (0, 1], got {f}"));
    }
    if a.months > 120 {
        return usage(format!("--months must be at most 120, got {}", a.months));
    }
    // Only ask the cluster for what the flags leave out.
    let needs_cluster = a.current_load.is_none()
        || data_size.is_none()
        || a.target_per_prg.is_none()
        || a.target_per_node.is_none()
        || a.node_memory_gib.is_none()
        || a.max_data_fill.is_none();
    let (mut measured, mut policy) = (Value::Null, None);
    if needs_cluster {
        if let Ok(v) = call_quietly(&a.target, "/api/v1/autoscale/signals") {
            measured = v["totals"].clone();
        }
        if let Ok(v) = call_quietly(&a.target, "/api/v1/autoscale") {
            policy = serde_json::from_value::<Policy>(v["policy"].clone()).ok();
        }
    }
    let (node_target, prg_target) = policy.as_ref().map(policy_targets).unwrap_or_default();
    let missing =
        |what: &str, flag: &str| usage(format!("no {what}: the cluster at {} did not say; give {flag}", a.target.http));
    let Some(load) = a.current_load.or_else(|| measured["ops"].as_f64()) else {
        return missing("current load", "--current-load");
    };
    let Some(data_bytes) = data_size.or_else(|| measured["dataBytes"].as_u64()) else {
        return missing("data size", "--data-size");
    };
    let Some(target_per_prg) = a.target_per_prg.or(prg_target) else {
        return missing("per-PRG target", "--target-per-prg (or a policy with tenants.*.targetPerPrg.ops)");
    };
    let Some(target_per_node) = a.target_per_node.or(node_target) else {
        return missing("per-node target", "--target-per-node (or a policy with an ops_per_node metric)");
    };
    for (name, v) in [("--target-per-prg", target_per_prg), ("--target-per-node", target_per_node)] {
        if !(v.is_finite() && v > 0.0) {
            return usage(format!("{name} must be greater than 0, got {v}"));
        }
    }
    let node_memory = a
        .node_memory_gib
        .map(|g| (g * (1u64 << 30) as f64) as u64)
        .or_else(|| measured["nodeMemory"].as_u64().filter(|m| *m > 0))
        .unwrap_or(8 << 30);
    let input = CapacityInput {
        load,
        data_bytes,
        target_per_prg,
        target_per_node,
        node_memory,
        max_data_fill: a.max_data_fill.or(policy.as_ref().and_then(|p| p.max_data_fill)).unwrap_or(0.7),
        max_replicas_per_node: policy.as_ref().and_then(|p| p.max_replicas_per_node),
        growth,
        months: a.months,
    };
    let rows = plan(&input);
    if a.target.json {
        println!("{}", json!({ "input": input, "rows": rows }));
        return 0;
    }
    println!(
        "growth {:.1} % a month from {load:.0} ops/s and {}; targets {target_per_node:.0} ops/s a node, \
         {target_per_prg:.0} a PRG; {} nodes",
        growth * 100.0,
        mib(data_bytes),
        mib(node_memory)
    );
    println!(
        "{:<8} {:>12} {:>12} {:>6} {:>6} {:<9} {:>14} {:>6}",
        "month", "load ops/s", "data", "PRGs", "nodes", "set by", "data per node", "fill"
    );
    for r in &rows {
        println!(
            "{:<8} {:>12.0} {:>12} {:>6} {:>6} {:<9} {:>14} {:>5.0}%",
            if r.month == 0 { "now".to_string() } else { format!("+{}", r.month) },
            r.load,
            mib(r.data_bytes),
            r.prgs,
            r.nodes,
            r.nodes_by,
            mib(r.bytes_per_node),
            r.memory_fill * 100.0
        );
    }
    0
}

#[derive(clap::Args)]
pub struct CalibrateArgs {
    /// A `tidal bench --scenario stress --json` result.
    #[arg(long = "from")]
    from: PathBuf,
    /// Nodes of the cluster the bench ran against (default: its endpoints).
    #[arg(long)]
    nodes: Option<u32>,
    /// PRGs it had.
    #[arg(long)]
    prgs: u32,
    /// The share of the breaking point to hold the cluster at.
    #[arg(long, default_value_t = 0.7)]
    margin: f64,
    /// A policy to set the targets in (YAML or JSON); printed as JSON.
    #[arg(long)]
    policy: Option<PathBuf>,
}

/// The figures of a stress run's breaking point: the best rate held.
fn breaking_point(v: &Value) -> Result<(f64, usize), String> {
    let b = v.get("breaking_point").filter(|b| !b.is_null()).ok_or_else(|| {
        "the bench file has no stress result (no breaking_point): run tidal bench --scenario stress --json FILE"
            .to_string()
    })?;
    let ops = b["last_good_ops_per_sec"].as_f64().ok_or_else(|| {
        format!("the stress run broke at its first step ({}): no rate held to calibrate from", b["reason"])
    })?;
    let endpoints = v["target"]["endpoints"].as_array().map_or(0, Vec::len);
    Ok((ops, endpoints))
}

pub fn calibrate(a: CalibrateArgs) -> i32 {
    if !(a.margin > 0.0 && a.margin <= 1.0) {
        return usage(format!("--margin must be in (0, 1], got {}", a.margin));
    }
    if a.prgs == 0 {
        return usage("--prgs must be at least 1".into());
    }
    let text = match std::fs::read_to_string(&a.from) {
        Ok(t) => t,
        Err(e) => return usage(format!("{}: {e}", a.from.display())),
    };
    let bench: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return usage(format!("{}: not a bench result: {e}", a.from.display())),
    };
    let (ops, endpoints) = match breaking_point(&bench) {
        Ok(b) => b,
        Err(e) => return usage(format!("{}: {e}", a.from.display())),
    };
    let nodes = a.nodes.unwrap_or(endpoints as u32);
    if nodes == 0 {
        return usage("the bench names no endpoints: give --nodes".into());
    }
    let per_node = (ops / f64::from(nodes) * a.margin).floor();
    let per_prg = (ops / f64::from(a.prgs) * a.margin).floor();
    let mut policy = match &a.policy {
        Some(p) => match crate::autoscale::read_policy(p) {
            Ok(p) => p,
            Err(e) => return usage(e),
        },
        None => serde_json::from_value(json!({"minNodes": 3, "maxNodes": 10})).expect("a minimal policy"),
    };
    let metric = json!({"type": "Pods", "pods": {"metric": {"name": "ops_per_node"},
        "target": {"type": "AverageValue", "averageValue": per_node}}});
    let metric = serde_json::from_value(metric).expect("a metric spec");
    match policy.metrics.iter_mut().find(|m| m.metric_name() == Some("ops_per_node")) {
        Some(m) => *m = metric,
        None => policy.metrics.push(metric),
    }
    if policy.tenants.is_empty() {
        policy.tenants.insert("default".into(), Default::default());
    }
    for t in policy.tenants.values_mut() {
        t.target_per_prg.ops = Some(per_prg);
    }
    if let Err(errors) = policy.validate() {
        for e in errors {
            eprintln!("error: {}: {}", e.field, e.why);
        }
        return EXIT_USAGE;
    }
    eprintln!(
        "breaking point: {ops:.0} ops/s on {nodes} nodes and {} PRGs; at {:.0} % of it: 1 node per {per_node:.0} ops/s, \
         1 PRG per {per_prg:.0} ops/s",
        a.prgs,
        a.margin * 100.0
    );
    println!("{}", serde_json::to_string_pretty(&policy).expect("a policy serializes"));
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("50GiB"), Ok(50 << 30));
        assert_eq!(parse_size("1.5 TiB"), Ok(3 << 39));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1GiB").is_err());
    }

    #[test]
    fn a_bench_without_a_stress_result_is_refused() {
        let steady = json!({"phases": [], "target": {"endpoints": ["a"]}});
        assert!(breaking_point(&steady).unwrap_err().contains("no stress result"));
        let broke_at_once = json!({"breaking_point": {"clients": 1, "reason": "p99", "last_good_clients": null,
            "last_good_ops_per_sec": null}, "target": {"endpoints": ["a"]}});
        assert!(breaking_point(&broke_at_once).unwrap_err().contains("first step"));
        let good = json!({"breaking_point": {"clients": 64, "reason": "p99", "last_good_clients": 32,
            "last_good_ops_per_sec": 30000.0}, "target": {"endpoints": ["a", "b", "c"]}});
        assert_eq!(breaking_point(&good), Ok((30_000.0, 3)));
    }
}
