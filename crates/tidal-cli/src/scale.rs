//! `tidal scale`: a scale-up, through a node's admin API
//! (`POST /api/v1/clusters/tidal/scale`). `--dry-run` shows the plan and
//! changes nothing; otherwise the plan runs as an operation, whose id is
//! printed, and `--wait` follows it to its end.

use serde_json::{json, Value};

use crate::moves::{mib, run_call, Target};
use crate::EXIT_USAGE;

#[derive(clap::Args)]
pub struct ScaleArgs {
    /// Nodes the cluster should have.
    #[arg(long)]
    nodes: Option<u64>,
    /// PRGs a tenant should have, as TENANT=COUNT (repeatable), e.g. `default=8`.
    #[arg(long = "prgs", value_name = "TENANT=COUNT")]
    prgs: Vec<String>,
    /// Show the plan; change nothing.
    #[arg(long, conflicts_with = "wait")]
    dry_run: bool,
    /// Follow the operation with a progress bar until it ends.
    #[arg(long)]
    wait: bool,
    /// Run only if the cluster is still at this control-plane version (the
    /// `cpVersion` of a dry run): what runs is what was shown.
    #[arg(long)]
    cp_version: Option<u64>,
    /// How long (ms) each health gate may take before its step fails.
    #[arg(long)]
    gate_timeout_ms: Option<u64>,
    /// How long (ms) new nodes may take to join and become ready.
    #[arg(long)]
    join_timeout_ms: Option<u64>,
    /// Most moves in flight touching any one node (default: the node's
    /// --max-moves-per-node).
    #[arg(long)]
    max_moves_per_node: Option<u32>,
    /// Most moves in flight in the cluster (default: the node's --max-moves).
    #[arg(long)]
    max_moves: Option<u32>,
    #[command(flatten)]
    target: Target,
}

pub fn run(a: ScaleArgs) -> i32 {
    let prgs = match parse_prgs(&a.prgs) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if a.nodes.is_none() && prgs.is_empty() {
        eprintln!("error: give --nodes N and/or --prgs TENANT=COUNT");
        return EXIT_USAGE;
    }
    let mut body = json!({
        "operation": "scale_out",
        "target_count": a.nodes,
        "prgs": prgs,
        "dry_run": a.dry_run,
    });
    let options = [
        ("cp_version", a.cp_version),
        ("gate_timeout_ms", a.gate_timeout_ms),
        ("join_timeout_ms", a.join_timeout_ms),
        ("max_moves_per_node", a.max_moves_per_node.map(u64::from)),
        ("max_moves", a.max_moves.map(u64::from)),
    ];
    for (k, v) in options {
        if let Some(v) = v {
            body[k] = json!(v);
        }
    }
    let answer = match run_call("POST", &a.target, "/api/v1/clusters/tidal/scale", Some(body)) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if a.dry_run {
        if a.target.json {
            println!("{answer}");
        } else {
            print_plan(&answer);
            println!("dry run: nothing changed");
        }
        return 0;
    }
    let Some(id) = answer["id"].as_u64() else {
        eprintln!("error: the node did not answer with an operation id: {answer}");
        return 1;
    };
    if a.wait {
        if !a.target.json {
            print_plan(&answer["plan"]);
        }
        return crate::operations::follow(&a.target, id);
    }
    if a.target.json {
        println!("{answer}");
    } else {
        println!("operation {id} started; follow it with `tidal operations {id}`");
    }
    0
}

/// `--prgs TENANT=COUNT` arguments as a JSON object.
pub(crate) fn parse_prgs(args: &[String]) -> Result<serde_json::Map<String, Value>, i32> {
    let mut prgs = serde_json::Map::new();
    for p in args {
        match p.split_once('=').map(|(t, n)| (t, n.parse::<u32>())) {
            Some((t, Ok(n))) if !t.is_empty() => {
                prgs.insert(t.to_string(), json!(n));
            }
            _ => {
                eprintln!("error: --prgs '{p}': expected TENANT=COUNT, e.g. default=8");
                return Err(EXIT_USAGE);
            }
        }
    }
    Ok(prgs)
}

/// A plan's replica moves and slot moves, a line each with its bytes.
pub(crate) fn print_moves(replicas: &[Value], slots: &[Value]) {
    if !replicas.is_empty() {
        println!("replica moves ({}):", replicas.len());
        for m in replicas {
            let prg = m["prg"].as_str().unwrap_or("");
            println!("  {prg:<12} node {} -> node {}  {}", m["from"], m["to"], mib(m["bytes"].as_u64().unwrap_or(0)));
        }
    }
    if !slots.is_empty() {
        println!("slot moves ({}):", slots.len());
        for m in slots {
            println!(
                "  {:<12} -> {:<12} slots {:<12} {}",
                m["from"].as_str().unwrap_or(""),
                m["to"].as_str().unwrap_or(""),
                m["slots"].as_str().unwrap_or(""),
                mib(m["bytes"].as_u64().unwrap_or(0))
            );
        }
    }
}

pub(crate) fn list(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

fn print_plan(p: &Value) {
    println!("plan from control-plane version {}", p["cpVersion"]);
    let nodes: Vec<String> = list(&p["addNodes"]).iter().map(|n| n["id"].to_string()).collect();
    if !nodes.is_empty() {
        println!("nodes to start: {}", nodes.join(", "));
    }
    let new = list(&p["newPrgs"]);
    if !new.is_empty() {
        println!("new PRGs ({}):", new.len());
        for n in new {
            let members: Vec<String> = list(&n["members"]).iter().map(Value::to_string).collect();
            println!("  {:<12} on nodes {}", n["prg"].as_str().unwrap_or(""), members.join(", "));
        }
    }
    print_moves(list(&p["replicaMoves"]), list(&p["slotMoves"]));
    let leaders = list(&p["leaderChanges"]);
    if !leaders.is_empty() {
        println!("leader changes: {}", leaders.len());
    }
    println!(
        "total {} in {} routing epoch bumps, about {} s",
        mib(p["totalBytes"].as_u64().unwrap_or(0)),
        p["epochBumps"],
        p["etaMs"].as_u64().unwrap_or(0).div_ceil(1000)
    );
}
