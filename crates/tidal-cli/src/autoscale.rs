//! `tidal autoscale`: put a policy in force (`apply -f policy.yaml`, YAML
//! or JSON, checked here first so that every wrong field is named before
//! anything is sent), see it with the current recommendation (`show`),
//! read the journal of decisions (`history`), or turn autoscaling off
//! (`off`). All through `/api/v1/autoscale`.

use std::path::PathBuf;

use serde_json::Value;
use tidal_core::autoscale::Policy;

use crate::moves::{run_call, Target};
use crate::EXIT_USAGE;

#[derive(clap::Args)]
pub struct AutoscaleArgs {
    #[command(subcommand)]
    cmd: AutoscaleCmd,
    #[command(flatten)]
    target: Target,
}

#[derive(clap::Subcommand)]
enum AutoscaleCmd {
    /// Put the policy in FILE (YAML or JSON, the HPA's autoscaling/v2
    /// vocabulary) in force.
    Apply {
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
    /// The policy in force, the current recommendation and why.
    Show,
    /// Past decisions, each with its inputs, arithmetic and outcome.
    History {
        /// Only the latest N.
        #[arg(long, default_value_t = 20)]
        last: usize,
    },
    /// Turn autoscaling off (the journal stays).
    Off,
    /// Events of the policy in force: `event add --name launch --start
    /// 2027-01-10T09:00:00Z --end ... --min-nodes 5 --prescale 24h
    /// --freeze-scale-down`, `event list`, `event remove NAME`.
    Event {
        #[command(subcommand)]
        cmd: EventCmd,
    },
    /// Cron minimums of the policy in force: `schedule add --name office
    /// --cron "0 8 * * 1-5" --duration 10h --min-nodes 5`, `schedule
    /// list`, `schedule remove NAME`.
    Schedule {
        #[command(subcommand)]
        cmd: ScheduleCmd,
    },
    /// CPU and memory requests and limits per node from the recorded usage
    /// (the VPA's recommend mode); nothing is applied.
    RecommendResources {
        /// How far back to look.
        #[arg(long, default_value = "24h")]
        window: String,
    },
    /// The load expected a while from now, from the recorded history.
    Forecast {
        /// How far ahead.
        #[arg(long, default_value = "10m")]
        lead: String,
    },
    /// Set the per-node and per-PRG targets from a measured breaking point
    /// (`tidal bench --scenario stress --json FILE`), at a margin below it;
    /// prints the policy.
    Calibrate(crate::capacity::CalibrateArgs),
    /// Replay a load trace against a policy, without a cluster: the
    /// decisions, nodes over time, minutes past the target and node-hours.
    Simulate(crate::simulate::SimulateArgs),
}

#[derive(clap::Subcommand)]
enum EventCmd {
    Add {
        #[arg(long)]
        name: String,
        /// RFC 3339, e.g. 2027-01-10T09:00:00Z.
        #[arg(long)]
        start: String,
        #[arg(long)]
        end: String,
        #[arg(long)]
        min_nodes: u32,
        /// Raise the minimum this long before the start.
        #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
        prescale: std::time::Duration,
        /// No scale-down from the start to the end.
        #[arg(long)]
        freeze_scale_down: bool,
    },
    List,
    Remove {
        name: String,
    },
}

#[derive(clap::Subcommand)]
enum ScheduleCmd {
    Add {
        #[arg(long)]
        name: String,
        /// Five fields, UTC: minute hour day-of-month month day-of-week.
        #[arg(long)]
        cron: String,
        /// How long the minimum holds from each firing.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        duration: std::time::Duration,
        #[arg(long)]
        min_nodes: u32,
    },
    List,
    Remove {
        name: String,
    },
}

/// The policy in force, from the cluster (a usage error when there is none).
fn policy_in_force(t: &Target) -> Result<Policy, i32> {
    let v = run_call("GET", t, "/api/v1/autoscale", None)?;
    if v["policy"].is_null() {
        eprintln!("error: no autoscale policy is in force; `tidal autoscale apply -f policy.yaml` first");
        return Err(EXIT_USAGE);
    }
    serde_json::from_value(v["policy"].clone()).map_err(|e| {
        eprintln!("error: the cluster's policy does not read: {e}");
        1
    })
}

/// Check `policy` here (every wrong field named) and put it in force.
fn put(t: &Target, policy: &Policy, done: &str) -> i32 {
    if let Err(errors) = policy.validate() {
        for e in errors {
            eprintln!("error: {}: {}", e.field, e.why);
        }
        return EXIT_USAGE;
    }
    let body = serde_json::to_value(policy).expect("a policy serializes");
    match run_call("PUT", t, "/api/v1/autoscale/policy", Some(body)) {
        Ok(v) if t.json => println!("{v}"),
        Ok(_) => println!("{done}"),
        Err(code) => return code,
    }
    0
}

fn run_event(t: &Target, cmd: EventCmd) -> i32 {
    let mut policy = match policy_in_force(t) {
        Ok(p) => p,
        Err(code) => return code,
    };
    match cmd {
        EventCmd::List => {
            if t.json {
                println!("{}", serde_json::to_value(&policy.events).expect("events serialize"));
            } else if policy.events.is_empty() {
                println!("no events");
            }
            for e in policy.events.iter().filter(|_| !t.json) {
                let freeze = if e.freeze_scale_down { ", scale-down frozen" } else { "" };
                println!(
                    "{}: {} – {}, at least {} nodes, from {} s ahead{freeze}",
                    e.name, e.start, e.end, e.min_nodes, e.prescale_seconds
                );
            }
            0
        }
        EventCmd::Remove { name } => {
            let before = policy.events.len();
            policy.events.retain(|e| e.name != name);
            if policy.events.len() == before {
                eprintln!("error: no event named '{name}'");
                return EXIT_USAGE;
            }
            put(t, &policy, &format!("event {name} removed"))
        }
        EventCmd::Add { name, start, end, min_nodes, prescale, freeze_scale_down } => {
            let done = format!("event {name} added: at least {min_nodes} nodes from {start} to {end}");
            policy.events.push(tidal_core::autoscale::schedule::Event {
                name,
                start,
                end,
                min_nodes,
                prescale_seconds: prescale.as_secs(),
                freeze_scale_down,
            });
            put(t, &policy, &done)
        }
    }
}

fn run_schedule(t: &Target, cmd: ScheduleCmd) -> i32 {
    let mut policy = match policy_in_force(t) {
        Ok(p) => p,
        Err(code) => return code,
    };
    match cmd {
        ScheduleCmd::List => {
            if t.json {
                println!("{}", serde_json::to_value(&policy.schedules).expect("schedules serialize"));
            } else if policy.schedules.is_empty() {
                println!("no schedules");
            }
            for s in policy.schedules.iter().filter(|_| !t.json) {
                println!("{}: \"{}\" for {} s, at least {} nodes", s.name, s.cron, s.duration_seconds, s.min_nodes);
            }
            0
        }
        ScheduleCmd::Remove { name } => {
            let before = policy.schedules.len();
            policy.schedules.retain(|s| s.name != name);
            if policy.schedules.len() == before {
                eprintln!("error: no schedule named '{name}'");
                return EXIT_USAGE;
            }
            put(t, &policy, &format!("schedule {name} removed"))
        }
        ScheduleCmd::Add { name, cron, duration, min_nodes } => {
            if policy.schedules.iter().any(|s| s.name == name) {
                eprintln!("error: a schedule is already named '{name}'");
                return EXIT_USAGE;
            }
            let done = format!("schedule {name} added: at least {min_nodes} nodes from each \"{cron}\"");
            let duration_seconds = duration.as_secs();
            policy.schedules.push(tidal_core::autoscale::schedule::Schedule {
                name,
                cron,
                duration_seconds,
                min_nodes,
            });
            put(t, &policy, &done)
        }
    }
}

/// The policy in `path`, checked: every wrong field, or the policy.
pub(crate) fn read_policy(path: &PathBuf) -> Result<Policy, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // JSON is YAML, but JSON's own parser words its errors for JSON.
    let parsed: Result<Policy, String> = if text.trim_start().starts_with('{') {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    } else {
        serde_saphyr::from_str(&text).map_err(|e| e.to_string())
    };
    let policy = parsed.map_err(|e| format!("{}: {e}", path.display()))?;
    if let Err(errors) = policy.validate() {
        let each: Vec<String> = errors.iter().map(|e| format!("  {}: {}", e.field, e.why)).collect();
        return Err(format!("{}: invalid policy:\n{}", path.display(), each.join("\n")));
    }
    Ok(policy)
}

pub fn run(a: AutoscaleArgs) -> i32 {
    let t = &a.target;
    match a.cmd {
        AutoscaleCmd::Simulate(s) => crate::simulate::run(s, t.json),
        AutoscaleCmd::Event { cmd } => run_event(t, cmd),
        AutoscaleCmd::Calibrate(c) => crate::capacity::calibrate(c),
        AutoscaleCmd::RecommendResources { window } => {
            match run_call("GET", t, &format!("/api/v1/autoscale/resources?window={window}"), None) {
                Ok(v) if t.json => {
                    println!("{v}");
                    0
                }
                Ok(v) => {
                    print_resources(&v, &window);
                    0
                }
                Err(code) => code,
            }
        }
        AutoscaleCmd::Forecast { lead } => {
            match run_call("GET", t, &format!("/api/v1/autoscale/forecast?lead={lead}"), None) {
                Ok(v) if t.json => {
                    println!("{v}");
                    0
                }
                Ok(v) => {
                    let f = &v["forecast"];
                    if f.is_null() {
                        println!("no forecast yet: {} points of 5 minutes recorded (an hour needed)", v["points"]);
                    } else {
                        println!(
                            "{:.0} ops/s expected in {lead} ({} season, from {} points of 5 minutes)",
                            f["ops"].as_f64().unwrap_or(0.0),
                            f["season"].as_str().unwrap_or(""),
                            f["points"]
                        );
                    }
                    0
                }
                Err(code) => code,
            }
        }
        AutoscaleCmd::Schedule { cmd } => run_schedule(t, cmd),
        AutoscaleCmd::Apply { file } => {
            let policy = match read_policy(&file) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_USAGE;
                }
            };
            let body = serde_json::to_value(&policy).expect("a policy serializes");
            match run_call("PUT", t, "/api/v1/autoscale/policy", Some(body)) {
                Ok(v) if t.json => println!("{v}"),
                Ok(_) => println!(
                    "autoscale policy in force: {}–{} nodes, {} metric(s); `tidal autoscale show` follows it",
                    policy.min_nodes,
                    policy.max_nodes,
                    policy.metrics.len()
                ),
                Err(code) => return code,
            }
            0
        }
        AutoscaleCmd::Off => match run_call("DELETE", t, "/api/v1/autoscale/policy", None) {
            Ok(v) if t.json => {
                println!("{v}");
                0
            }
            Ok(_) => {
                println!("autoscaling off; the journal of decisions stays");
                0
            }
            Err(code) => code,
        },
        AutoscaleCmd::Show => match run_call("GET", t, "/api/v1/autoscale", None) {
            Ok(v) if t.json => {
                println!("{v}");
                0
            }
            Ok(v) => {
                show(&v);
                0
            }
            Err(code) => code,
        },
        AutoscaleCmd::History { last } => match run_call("GET", t, "/api/v1/autoscale/decisions", None) {
            Ok(v) => {
                let all = v["decisions"].as_array().cloned().unwrap_or_default();
                let tail = &all[all.len().saturating_sub(last)..];
                if t.json {
                    println!("{}", Value::Array(tail.to_vec()));
                } else if tail.is_empty() {
                    println!("no decisions yet");
                }
                for d in tail.iter().filter(|_| !t.json) {
                    print_decision(d);
                }
                0
            }
            Err(code) => code,
        },
    }
}

fn print_resources(v: &Value, window: &str) {
    println!("from the usage over the last {window} (lower bound p50, request p90 CPU / p95 memory, limit p95 CPU / peak memory; +15 %):");
    println!("{:<8} {:>8} {:>22} {:>30}", "node", "samples", "cpu millicores req/lim", "memory MiB req/lim (peak)");
    let row = |name: &str, a: &Value| {
        let cpu = &a["cpuMillicores"];
        let mem = &a["memoryBytes"];
        let mib = |b: &Value| b.as_u64().map_or("-".to_string(), |b| format!("{:.0}", b as f64 / (1 << 20) as f64));
        let cpu_text = if cpu.is_null() { "-".to_string() } else { format!("{}/{}", cpu["request"], cpu["limit"]) };
        let mem_text = if mem.is_null() {
            "-".to_string()
        } else {
            format!("{}/{} ({})", mib(&mem["request"]), mib(&mem["limit"]), mib(&mem["peak"]))
        };
        println!("{name:<8} {:>8} {cpu_text:>22} {mem_text:>30}", a["samples"]);
    };
    for (n, a) in v["nodes"].as_object().into_iter().flatten() {
        row(n, a);
    }
    row("all", &v["all"]);
    println!("nothing is applied: size the nodes by these when you next change them");
}

fn show(v: &Value) {
    if v["policy"].is_null() {
        println!("autoscaling is off (no policy); `tidal autoscale apply -f policy.yaml` turns it on");
        return;
    }
    let p = &v["policy"];
    println!(
        "policy: {}–{} nodes, tolerance {}, auto-arm {}",
        p["minNodes"], p["maxNodes"], p["tolerance"], p["autoArm"]
    );
    for m in p["metrics"].as_array().into_iter().flatten() {
        println!("  metric {}", compact(m));
    }
    if let Some(b) = p.get("behavior").filter(|b| !b.is_null()) {
        println!("  behavior {}", compact(b));
    }
    println!("nodes now: {}", v["nodes"]);
    match v.get("latest").filter(|l| !l.is_null()) {
        None => println!("no decision yet"),
        Some(d) => {
            println!("latest decision:");
            print_decision(d);
        }
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// One decision: when, the count, every ask with its arithmetic, the
/// HPA's stabilization and limits, any hold, the PRGs, and the outcome.
fn print_decision(d: &Value) {
    let dec = &d["decision"];
    let at = dec["at_ms"].as_u64().unwrap_or(0);
    let when = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(at));
    println!("#{} {when}: {} → {} nodes ({})", d["id"], dec["current"], dec["nodes"], outcome(&d["outcome"]));
    for a in dec["asks"].as_array().into_iter().flatten() {
        println!("    {:<24} {}", a["source"].as_str().unwrap_or(""), a["why"].as_str().unwrap_or(""));
    }
    let r = &dec["recommendation"];
    println!(
        "    asked {}, stabilized {} ({}), limited to {} ({})",
        r["asked"],
        r["stabilized"],
        r["stabilization"].as_str().unwrap_or(""),
        r["nodes"],
        r["reason"].as_str().unwrap_or("")
    );
    if let Some(h) = dec["held"].as_str() {
        println!("    held: {h}");
    }
    for (t, p) in dec["prgs"].as_object().into_iter().flatten() {
        println!("    tenant {t}: {} PRGs ({})", p["prgs"], p["why"].as_str().unwrap_or(""));
    }
}

fn outcome(o: &Value) -> String {
    let Some((kind, body)) = o.as_object().and_then(|m| m.iter().next()) else {
        return o.as_str().unwrap_or("?").to_string();
    };
    let field = |k: &str| body[k].as_str().map(str::to_string).unwrap_or_else(|| body[k].to_string());
    match kind.as_str() {
        "scaleUp" => format!("scale-up started: operation {}", field("operation")),
        "drafted" => format!("shrink plan {} drafted; arm it to shrink", field("plan")),
        "armed" => format!("shrink plan {} armed: operation {}", field("plan"), field("operation")),
        "draftCancelled" => format!("shrink plan {} cancelled: the load came back", field("plan")),
        "waiting" => format!("waiting: {}", field("why")),
        "failed" => format!("failed: {}", field("why")),
        other => other.to_string(),
    }
}
