//! Capacity planning, as the runbook does it by hand: the load and data a
//! month-by-month growth rate leads to (`Future = Current × (1 + growth)^months`),
//! and the PRGs, nodes and memory per node each month needs, from the
//! same rules the recommender holds the cluster to.

use serde::{Deserialize, Serialize};

use super::data::{nodes_for_data, nodes_for_replicas};
use crate::placement::REPLICAS;

/// Today's figures and the targets to plan against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityInput {
    /// Operations a second now.
    pub load: f64,
    /// Bytes stored now, one replica's worth.
    pub data_bytes: u64,
    /// Operations a second one PRG should carry.
    pub target_per_prg: f64,
    /// Operations a second one node should carry.
    pub target_per_node: f64,
    /// Memory of a node, and the share of it data may fill.
    pub node_memory: u64,
    pub max_data_fill: f64,
    /// Replicas a node may host at most.
    pub max_replicas_per_node: Option<u32>,
    /// Growth a month (0.15 for 15 %).
    pub growth: f64,
    pub months: u32,
}

/// One month of the plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityRow {
    pub month: u32,
    pub load: f64,
    pub data_bytes: u64,
    pub prgs: u32,
    pub nodes: u32,
    /// What sets the node count: `load`, `data`, `replicas` or `minimum`.
    pub nodes_by: String,
    /// Data bytes on each node (its replicas), and that over its memory.
    pub bytes_per_node: u64,
    pub memory_fill: f64,
}

/// `ceil(total / per)`, at least 1.
fn at_least_one(total: f64, per: f64) -> u32 {
    if per <= 0.0 || !total.is_finite() {
        return 1;
    }
    (total / per).ceil().clamp(1.0, f64::from(u32::MAX)) as u32
}

/// The plan, month 0 (now) to `input.months`.
pub fn plan(input: &CapacityInput) -> Vec<CapacityRow> {
    (0..=input.months)
        .map(|month| {
            let factor = (1.0 + input.growth).powi(month as i32);
            let load = input.load * factor;
            let data_bytes = (input.data_bytes as f64 * factor).round() as u64;
            let prgs = at_least_one(load, input.target_per_prg);
            let asks = [
                ("minimum", REPLICAS as u32),
                ("load", at_least_one(load, input.target_per_node)),
                ("data", nodes_for_data(data_bytes, input.node_memory, input.max_data_fill)),
                ("replicas", input.max_replicas_per_node.map_or(0, |m| nodes_for_replicas(prgs, m))),
            ];
            let (by, nodes) = asks.into_iter().fold(("minimum", 0), |best, a| if a.1 > best.1 { a } else { best });
            let bytes_per_node = (data_bytes as f64 * REPLICAS as f64 / f64::from(nodes)).round() as u64;
            CapacityRow {
                month,
                load,
                data_bytes,
                prgs,
                nodes,
                nodes_by: by.to_string(),
                bytes_per_node,
                memory_fill: if input.node_memory > 0 { bytes_per_node as f64 / input.node_memory as f64 } else { 0.0 },
            }
        })
        .collect()
}

/// A growth rate as people write it: `15%/mo`, `15%`, `0.15`.
pub fn parse_growth(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let t = t.strip_suffix("/mo").or_else(|| t.strip_suffix("/month")).unwrap_or(t).trim();
    let (num, scale) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (t, 1.0),
    };
    let v: f64 = num.parse().map_err(|_| format!("'{s}' is not a growth rate (e.g. 15%/mo)"))?;
    let g = v / scale;
    if !(g.is_finite() && (-0.99..=10.0).contains(&g)) {
        return Err(format!("growth {s} is out of range (-99 % to 1000 % a month)"));
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> CapacityInput {
        CapacityInput {
            load: 10_000.0,
            data_bytes: 20 << 30,
            target_per_prg: 2_000.0,
            target_per_node: 4_000.0,
            node_memory: 64 << 30,
            max_data_fill: 0.7,
            max_replicas_per_node: None,
            growth: 0.15,
            months: 12,
        }
    }

    #[test]
    fn the_runbooks_compound_growth() {
        let rows = plan(&input());
        assert_eq!(rows.len(), 13);
        // Now: 10 000 ops, 5 PRGs, ceil(10 000 / 4 000) = 3 nodes.
        assert_eq!((rows[0].prgs, rows[0].nodes, rows[0].nodes_by.as_str()), (5, 3, "minimum"));
        // A year on: 10 000 × 1.15^12 = 53 502 ops.
        let last = &rows[12];
        assert!((last.load - 53_502.5).abs() < 1.0, "{}", last.load);
        assert_eq!((last.prgs, last.nodes, last.nodes_by.as_str()), (27, 14, "load"));
        // The data: 20 GiB × 1.15^12 × 3 replicas over 14 nodes.
        assert!((last.memory_fill - 0.357).abs() < 0.01, "{}", last.memory_fill);
    }

    #[test]
    fn data_or_replicas_can_set_the_count() {
        let data = CapacityInput { data_bytes: 200 << 30, months: 0, ..input() };
        // 200 GiB × 3 in 64 GiB × 0.7 a node: ceil(13.4) = 14.
        assert_eq!((plan(&data)[0].nodes, plan(&data)[0].nodes_by.as_str()), (14, "data"));
        let replicas = CapacityInput { max_replicas_per_node: Some(2), months: 0, ..input() };
        // 5 PRGs × 3 replicas, 2 a node: 8.
        assert_eq!((plan(&replicas)[0].nodes, plan(&replicas)[0].nodes_by.as_str()), (8, "replicas"));
    }

    #[test]
    fn growth_rates_parse_as_written() {
        assert_eq!(parse_growth("15%/mo"), Ok(0.15));
        assert_eq!(parse_growth("15%"), Ok(0.15));
        assert_eq!(parse_growth("0.15"), Ok(0.15));
        assert_eq!(parse_growth("-10%/month"), Ok(-0.1));
        assert!(parse_growth("fast").is_err());
        assert!(parse_growth("5000%").is_err());
    }
}
