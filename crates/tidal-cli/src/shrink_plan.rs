//! `tidal shrink-plan`: shrink plans, through a node's admin API
//! (`/admin/shrink-plan`). `create --nodes 3 --prgs default=4` computes a
//! plan and records it as a Draft, printing every move it binds with its
//! bytes, the total and the ETA (`--dry-run` records nothing); `show ID`,
//! `list`, `arm ID` and `cancel ID` follow.

use serde_json::{json, Value};

use crate::moves::{mib, run_call, Target};
use crate::scale::{list, parse_prgs, print_moves};
use crate::EXIT_USAGE;

#[derive(clap::Args)]
pub struct ShrinkPlanArgs {
    #[command(subcommand)]
    cmd: ShrinkPlanCmd,
    #[command(flatten)]
    target: Target,
}

#[derive(clap::Subcommand)]
enum ShrinkPlanCmd {
    /// Compute a plan and record it as a Draft: nothing moves until it is armed.
    Create {
        /// The plan's id (default: `shrink-v` and the control-plane version).
        #[arg(long)]
        id: Option<String>,
        /// Nodes the cluster should keep.
        #[arg(long)]
        nodes: Option<u64>,
        /// PRGs a tenant should keep, as TENANT=COUNT (repeatable), e.g. `default=4`.
        #[arg(long = "prgs", value_name = "TENANT=COUNT")]
        prgs: Vec<String>,
        /// Show the plan; record nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show a plan with every move it binds.
    Show { id: String },
    /// List the plans.
    List,
    /// Arm a Draft: refused if another plan is armed or the cluster changed
    /// since the plan was made.
    Arm {
        id: String,
        /// Follow the plan's operation until it ends, with a progress bar.
        #[arg(long)]
        wait: bool,
    },
    /// Cancel a Draft.
    Cancel { id: String },
}

pub fn run(a: ShrinkPlanArgs) -> i32 {
    let t = &a.target;
    let answer = match a.cmd {
        ShrinkPlanCmd::Create { id, nodes, prgs, dry_run } => {
            let prgs = match parse_prgs(&prgs) {
                Ok(p) => p,
                Err(code) => return code,
            };
            if nodes.is_none() && prgs.is_empty() {
                eprintln!("error: give --nodes N and/or --prgs TENANT=COUNT");
                return EXIT_USAGE;
            }
            let mut body = json!({ "dry_run": dry_run });
            if let Some(id) = id {
                body["plan_id"] = json!(id);
            }
            if let Some(n) = nodes {
                body["nodes"] = json!(n);
            }
            if !prgs.is_empty() {
                body["prgs"] = Value::Object(prgs);
            }
            let plan = run_call("POST", t, "/admin/shrink-plan", Some(body));
            if let (Ok(p), false) = (&plan, t.json) {
                print_plan(p);
                if dry_run {
                    println!("dry run: nothing recorded");
                } else {
                    let id = p["plan_id"].as_str().unwrap_or("");
                    println!("recorded as a Draft; nothing moves until `tidal shrink-plan arm {id}`");
                }
                return 0;
            }
            plan
        }
        ShrinkPlanCmd::Show { id } => {
            let plan = run_call("GET", t, &format!("/admin/shrink-plan/{id}"), None);
            if let (Ok(p), false) = (&plan, t.json) {
                print_plan(p);
                return 0;
            }
            plan
        }
        ShrinkPlanCmd::List => {
            let plans = run_call("GET", t, "/admin/shrink-plan", None);
            if let (Ok(v), false) = (&plans, t.json) {
                print_list(list(&v["plans"]));
                return 0;
            }
            plans
        }
        ShrinkPlanCmd::Arm { id, wait } => {
            let armed = run_call("POST", t, "/admin/shrink-plan/arm", Some(json!({ "plan_id": id })));
            if let (Ok(v), true) = (&armed, wait) {
                return crate::operations::follow(t, v["id"].as_u64().unwrap_or(0));
            }
            armed
        }
        ShrinkPlanCmd::Cancel { id } => {
            let plan = run_call("POST", t, "/admin/shrink-plan/cancel", Some(json!({ "plan_id": id })));
            if let (Ok(_), false) = (&plan, t.json) {
                println!("plan {id}: Cancelled");
                return 0;
            }
            plan
        }
    };
    match answer {
        Ok(v) => {
            println!("{v}");
            0
        }
        Err(code) => code,
    }
}

fn print_list(plans: &[Value]) {
    if plans.is_empty() {
        println!("no shrink plans");
        return;
    }
    println!("{:<24} {:<10} {:>6} {:>12} {:>8}  removes", "PLAN", "STATE", "MOVES", "BYTES", "ETA");
    for p in plans {
        let mut removes: Vec<String> =
            list(&p["remove_prgs"]).iter().filter_map(|x| x.as_str().map(String::from)).collect();
        removes.extend(list(&p["remove_nodes"]).iter().map(|n| format!("node {n}")));
        println!(
            "{:<24} {:<10} {:>6} {:>12} {:>7}s  {}",
            p["plan_id"].as_str().unwrap_or(""),
            p["state"].as_str().unwrap_or(""),
            p["moves"],
            mib(p["total_bytes"].as_u64().unwrap_or(0)),
            p["eta_ms"].as_u64().unwrap_or(0).div_ceil(1000),
            removes.join(", ")
        );
    }
}

fn print_plan(p: &Value) {
    println!(
        "plan {} ({}), made at control-plane version {}, routing epoch {}",
        p["plan_id"].as_str().unwrap_or(""),
        p["state"].as_str().unwrap_or(""),
        p["cp_version"],
        p["routing_epoch"]
    );
    println!("PRGs that stay:");
    for t in list(&p["target_placements"]) {
        let members: Vec<String> = list(&t["target_members"]).iter().map(Value::to_string).collect();
        println!("  {:<12} on nodes {}", t["prg_id"].as_str().unwrap_or(""), members.join(", "));
    }
    print_moves(list(&p["replica_moves"]), list(&p["slot_moves"]));
    let names = |v: &Value| list(v).iter().map(|x| x.as_str().map_or(x.to_string(), String::from)).collect::<Vec<_>>();
    let prgs = names(&p["remove_prgs"]);
    if !prgs.is_empty() {
        println!("PRGs deleted once empty: {}", prgs.join(", "));
    }
    let nodes = names(&p["remove_nodes"]);
    if !nodes.is_empty() {
        println!("nodes drained and removed: {}", nodes.join(", "));
    }
    println!(
        "total {} in {} routing epoch bumps, about {} s",
        mib(p["total_bytes"].as_u64().unwrap_or(0)),
        p["epoch_bumps"],
        p["eta_ms"].as_u64().unwrap_or(0).div_ceil(1000)
    );
}
