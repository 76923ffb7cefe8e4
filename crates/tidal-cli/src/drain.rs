//! `tidal drain NODE`: move a node's leaderships and replicas to other
//! nodes, after which it exits (`/admin/drain`). `--wait` follows the
//! drain operation with a progress bar, `--dry-run` shows its moves,
//! `--cancel` makes a draining node Active again, and `tidal drain` alone
//! lists the nodes draining. `tidal remove-node NODE` then takes a drained
//! node out of the cluster.

use serde_json::{json, Value};

use crate::moves::{run_call, Target};
use crate::operations::follow;
use crate::scale::{list, print_moves};

#[derive(clap::Args)]
pub struct DrainArgs {
    /// The node to drain; none lists the nodes draining.
    node: Option<u64>,
    /// Follow the drain until it ends; the exit code says how it ended.
    #[arg(long)]
    wait: bool,
    /// Show the moves a drain would make; change nothing.
    #[arg(long, conflicts_with_all = ["wait", "cancel"])]
    dry_run: bool,
    /// Stop draining the node: it is Active again (replicas moved stay moved).
    #[arg(long, conflicts_with = "wait")]
    cancel: bool,
    #[command(flatten)]
    target: Target,
}

pub fn run(a: DrainArgs) -> i32 {
    let t = &a.target;
    let Some(node) = a.node else {
        return match run_call("GET", t, "/admin/drain", None) {
            Ok(v) if t.json => {
                println!("{v}");
                0
            }
            Ok(v) => {
                print_list(list(&v["nodes"]));
                0
            }
            Err(code) => code,
        };
    };
    if a.cancel {
        return match run_call("POST", t, "/admin/drain/cancel", Some(json!({ "node": node }))) {
            Ok(v) if t.json => {
                println!("{v}");
                0
            }
            Ok(_) => {
                println!("node {node}: Active again; its drain stopped (replicas already moved stay moved)");
                0
            }
            Err(code) => code,
        };
    }
    let answer = match run_call("POST", t, "/admin/drain", Some(json!({ "node": node, "dry_run": a.dry_run }))) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if t.json && !a.wait {
        println!("{answer}");
        return 0;
    }
    let plan = &answer["plan"];
    if !t.json {
        print_moves(list(&plan["replicaMoves"]), &[]);
        if a.dry_run {
            println!("dry run: nothing changed");
            return 0;
        }
        let op = &answer["id"];
        let again = if answer["already_draining"] == true { " (already under way)" } else { "" };
        println!("node {node}: draining as operation {op}{again}; it exits once its replicas are elsewhere");
    }
    match (a.wait, answer["id"].as_u64()) {
        (true, Some(id)) => follow(t, id),
        _ => 0,
    }
}

fn print_list(nodes: &[Value]) {
    if nodes.is_empty() {
        println!("no node is draining");
        return;
    }
    println!("{:<6} {:<12} {:<10} replicas", "node", "state", "operation");
    for n in nodes {
        let op = n["operation"].as_u64().map_or_else(|| "-".to_string(), |o| o.to_string());
        let replicas: Vec<&str> = list(&n["replicas"]).iter().filter_map(Value::as_str).collect();
        println!("{:<6} {:<12} {:<10} {}", n["node"], n["state"].as_str().unwrap_or(""), op, replicas.join(" "));
    }
}

#[derive(clap::Args)]
pub struct RemoveNodeArgs {
    /// The node to remove; it must hold no replica (drain it first).
    node: u64,
    #[command(flatten)]
    target: Target,
}

/// `tidal remove-node NODE`: take a drained node out of the cluster for
/// good (`/admin/remove-node`), printing quorum and node count before and
/// after.
pub fn run_remove(a: RemoveNodeArgs) -> i32 {
    let t = &a.target;
    match run_call("POST", t, "/admin/remove-node", Some(json!({ "node": a.node }))) {
        Ok(v) if t.json => {
            println!("{v}");
            0
        }
        Ok(v) => {
            let (b, n) = (&v["before"], &v["after"]);
            println!("node {} removed; it stops at its next sync", a.node);
            println!("  before: {} nodes, quorum {}", b["nodeCount"], b["quorum"]);
            println!("  after:  {} nodes, quorum {}", n["nodeCount"], n["quorum"]);
            0
        }
        Err(code) => code,
    }
}
