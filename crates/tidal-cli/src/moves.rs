//! `tidal move`, `tidal moves`, `tidal prgs` and `tidal leader`: the data
//! movement commands, each a thin client of a node's admin API
//! (`/api/v1/moves`, `/api/v1/tenants/{t}/prgs`, `/api/v1/prgs/{prg}/leader`).
//! Human-readable by default, `--json` for scripts; `--wait` follows a move
//! with a progress bar until it finishes.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::EXIT_USAGE;

/// Where the admin API is and how to print.
#[derive(clap::Args, Clone)]
pub struct Target {
    /// HTTP address of any node.
    #[arg(long, env = "TIDAL_HTTP", default_value = "127.0.0.1:6480", global = true)]
    pub(crate) http: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

#[derive(clap::Args)]
pub struct MoveArgs {
    #[command(subcommand)]
    cmd: MoveCmd,
    #[command(flatten)]
    target: Target,
}

#[derive(clap::Subcommand)]
enum MoveCmd {
    /// Move slots of a tenant to another of its PRGs, online.
    Slots {
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Slots, e.g. `0-63` or `0-7,100`.
        #[arg(long)]
        slots: String,
        /// Target PRG, e.g. `default:2`.
        #[arg(long)]
        to: String,
        /// Source PRG (default: whichever PRG owns all the slots).
        #[arg(long)]
        from: Option<String>,
        /// Follow the move with a progress bar until it finishes.
        #[arg(long)]
        wait: bool,
    },
    /// Move a PRG's replica from one node to another, online (the PRG keeps
    /// three voters throughout).
    Replica {
        /// The PRG, e.g. `default:1`.
        #[arg(long)]
        prg: String,
        /// The node giving up its replica.
        #[arg(long)]
        from: u64,
        /// The node receiving it.
        #[arg(long)]
        to: u64,
        /// Follow the move until it finishes.
        #[arg(long)]
        wait: bool,
    },
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MovesArgs {
    /// Show one move.
    id: Option<u64>,
    #[command(subcommand)]
    cmd: Option<MovesCmd>,
    #[command(flatten)]
    target: Target,
}

#[derive(clap::Subcommand)]
enum MovesCmd {
    /// Cancel a move; it rolls back unless it has already committed.
    Cancel { id: u64 },
}

#[derive(clap::Args)]
pub struct PrgsArgs {
    #[command(subcommand)]
    cmd: PrgsCmd,
    #[command(flatten)]
    target: Target,
}

#[derive(clap::Subcommand)]
enum PrgsCmd {
    /// Add empty PRGs to a tenant; they own no slots until slots move to them.
    Add {
        #[arg(long, default_value = "default")]
        tenant: String,
        #[arg(long)]
        count: u32,
        /// Three node ids (default: chosen by the placement rules).
        #[arg(long, value_delimiter = ',')]
        members: Option<Vec<u64>>,
    },
}

#[derive(clap::Args)]
pub struct LeaderArgs {
    #[command(subcommand)]
    cmd: LeaderCmd,
    #[command(flatten)]
    target: Target,
}

#[derive(clap::Subcommand)]
enum LeaderCmd {
    /// Hand a PRG's leadership to one of its members.
    Transfer {
        #[arg(long)]
        prg: String,
        #[arg(long)]
        to: u64,
    },
}

/// One admin API call: the status and the JSON body.
fn call(method: &str, addr: &str, path: &str, body: Option<Value>) -> Result<(u16, Value), String> {
    use crate::http_client::authorize;
    let agent = crate::http_client::agent(Duration::from_secs(15));
    let url = crate::http_client::url(addr, path);
    let resp = match (method, body) {
        ("POST", Some(b)) => authorize(agent.post(&url)).header("content-type", "application/json").send(b.to_string()),
        ("POST", None) => authorize(agent.post(&url)).send_empty(),
        ("PUT", Some(b)) => authorize(agent.put(&url)).header("content-type", "application/json").send(b.to_string()),
        ("DELETE", _) => authorize(agent.delete(&url)).call(),
        _ => authorize(agent.get(&url)).call(),
    };
    let mut resp = resp.map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().map_err(|e| format!("{url}: {e}"))?;
    let v = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "error": text.trim() }));
    Ok((status, v))
}

/// Print the error of a failed call; the exit code tells bad input (64)
/// from a failure of the cluster (1).
fn fail(status: u16, v: &Value) -> i32 {
    eprintln!("error: {}", v["error"].as_str().unwrap_or("request failed"));
    if (400..500).contains(&status) && status != 408 {
        EXIT_USAGE
    } else {
        1
    }
}

/// GET `path`, printing nothing: the answer of a 200, or why not.
pub(crate) fn call_quietly(t: &Target, path: &str) -> Result<Value, String> {
    match call("GET", &t.http, path, None) {
        Ok((200, v)) => Ok(v),
        Ok((s, v)) => Err(format!("{s}: {}", v["error"])),
        Err(e) => Err(e),
    }
}

pub(crate) fn run_call(method: &str, t: &Target, path: &str, body: Option<Value>) -> Result<Value, i32> {
    match call(method, &t.http, path, body) {
        Ok((s, v)) if (200..300).contains(&s) => Ok(v),
        Ok((s, v)) => Err(fail(s, &v)),
        Err(e) => {
            eprintln!("error: {e}");
            Err(1)
        }
    }
}

/// GET `path` (which `what` names in errors) until it answers 200: a
/// failure that may pass (a node restarting, an election) is retried 200 ms
/// later, up to `patience` times in a row; a 4xx ends it with its exit code.
pub(crate) fn get_patiently(t: &Target, path: &str, what: &str, patience: u32) -> Result<Value, i32> {
    let mut failures = 0u32;
    loop {
        match call("GET", &t.http, path, None) {
            Ok((200, v)) => return Ok(v),
            Ok((s, v)) if (400..500).contains(&s) => return Err(fail(s, &v)),
            other => {
                failures += 1;
                if failures > patience {
                    eprintln!("error: cannot follow {what}: {other:?}");
                    return Err(1);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

pub(crate) fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

pub fn run_move(a: MoveArgs) -> i32 {
    let (body, wait) = match a.cmd {
        MoveCmd::Slots { tenant, slots, to, from, wait } => {
            (json!({ "tenant": tenant, "slots": slots, "to": to, "from": from }), wait)
        }
        MoveCmd::Replica { prg, from, to, wait } => {
            (json!({ "kind": "replica", "prg": prg, "from": from, "to": to }), wait)
        }
    };
    let v = match run_call("POST", &a.target, "/api/v1/moves", Some(body)) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let id = v["id"].as_u64().unwrap_or(0);
    if !wait {
        if a.target.json {
            println!("{v}");
        } else {
            println!("move {id} started; follow it with `tidal moves {id}`");
        }
        return 0;
    }
    follow(&a.target, id)
}

/// Poll a move until it finishes, showing a progress bar (unless `--json`).
fn follow(t: &Target, id: u64) -> i32 {
    let bar = if t.json { ProgressBar::hidden() } else { ProgressBar::new(1000) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} move {prefix}: [{bar:30}] {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_prefix(id.to_string());
    let started = Instant::now();
    loop {
        let m = match get_patiently(t, &format!("/api/v1/moves/{id}"), &format!("move {id}"), 50) {
            Ok(m) => m,
            Err(code) => return code,
        };
        let state = m["state"].as_str().unwrap_or("?").to_string();
        let fraction = m["copyFraction"].as_f64().unwrap_or(0.0);
        let bytes = m["bytes"].as_u64().unwrap_or(0);
        let rate = m["bytesPerSec"].as_u64().unwrap_or(0);
        let elapsed = started.elapsed().as_secs_f64();
        let lag = m["lag"].as_u64().map(|l| format!(" lag {l} entries")).unwrap_or_default();
        let eta = if fraction > 0.0 && fraction < 1.0 {
            format!("ETA {:.0}s", elapsed * (1.0 - fraction) / fraction)
        } else {
            String::from("ETA -")
        };
        bar.set_position((fraction * 1000.0) as u64);
        if m["kind"] == "replica" {
            bar.set_message(format!("{state} {} at {}/s{lag}", mib(bytes), mib(rate)));
        } else {
            bar.set_message(format!("{state} {} at {}/s {eta}", mib(bytes), mib(rate)));
        }
        bar.tick();
        if state == "done" || state == "rolled-back" {
            bar.finish_and_clear();
            if t.json {
                println!("{m}");
            } else {
                print_move(&m);
            }
            return if state == "done" { 0 } else { 1 };
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn print_move(m: &Value) {
    let opt = |k: &str| m[k].as_u64().map_or("-".to_string(), |v| v.to_string());
    if m["kind"] == "replica" {
        println!(
            "move {} (replica of {} from node {} to node {}): {} in {} ms, {} sent to the learner ({}/s)",
            m["id"],
            m["prg"].as_str().unwrap_or(""),
            m["from"],
            m["to"],
            m["state"].as_str().unwrap_or("?"),
            m["elapsedMs"],
            mib(m["bytes"].as_u64().unwrap_or(0)),
            mib(m["bytesPerSec"].as_u64().unwrap_or(0)),
        );
        if let Some(e) = m["error"].as_str() {
            println!("  last error: {e}");
        }
        return;
    }
    println!(
        "move {} ({} slots {} of {}, {} -> {}): {}",
        m["id"],
        m["slotCount"],
        m["slots"].as_str().unwrap_or(""),
        m["tenant"].as_str().unwrap_or(""),
        m["from"].as_str().unwrap_or(""),
        m["to"].as_str().unwrap_or(""),
        m["state"].as_str().unwrap_or("?"),
    );
    println!(
        "  {} rows, {} in {} ms ({}/s), {} catch-up rounds, fence {} ms, commit epoch {}",
        m["rows"],
        mib(m["bytes"].as_u64().unwrap_or(0)),
        m["elapsedMs"],
        mib(m["bytesPerSec"].as_u64().unwrap_or(0)),
        m["catchUpRounds"],
        opt("fenceWindowMs"),
        opt("commitEpoch"),
    );
    if let Some(e) = m["error"].as_str() {
        println!("  last error: {e}");
    }
}

pub fn run_moves(a: MovesArgs) -> i32 {
    if let Some(MovesCmd::Cancel { id }) = a.cmd {
        return match run_call("POST", &a.target, &format!("/api/v1/moves/{id}/cancel"), None) {
            Ok(v) if a.target.json => {
                println!("{v}");
                0
            }
            Ok(_) => {
                println!("move {id}: cancel requested; it rolls back unless it has committed");
                0
            }
            Err(code) => code,
        };
    }
    let path = match a.id {
        Some(id) => format!("/api/v1/moves/{id}"),
        None => "/api/v1/moves".to_string(),
    };
    let v = match run_call("GET", &a.target, &path, None) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if a.target.json {
        println!("{v}");
    } else if a.id.is_some() {
        print_move(&v);
    } else {
        let moves = v.as_array().cloned().unwrap_or_default();
        if moves.is_empty() {
            println!("no moves");
        }
        println!(
            "{:>4}  {:<8} {:<12} {:<10} {:<10} {:<13} {:>10} {:>9}",
            "ID", "KIND", "SLOTS", "FROM", "TO", "STATE", "BYTES", "FENCE ms"
        );
        for m in moves {
            if m["kind"] == "replica" {
                let what = m["prg"].as_str().unwrap_or("");
                println!(
                    "{:>4}  {:<8} {:<12} {:<10} {:<10} {:<13} {:>10} {:>9}",
                    m["id"].to_string(),
                    "replica",
                    what,
                    format!("node {}", m["from"]),
                    format!("node {}", m["to"]),
                    m["state"].as_str().unwrap_or(""),
                    mib(m["bytes"].as_u64().unwrap_or(0)),
                    "-",
                );
                continue;
            }
            println!(
                "{:>4}  {:<8} {:<12} {:<10} {:<10} {:<13} {:>10} {:>9}",
                m["id"].to_string(),
                m["kind"].as_str().unwrap_or(""),
                m["slots"].as_str().unwrap_or(""),
                m["from"].as_str().unwrap_or(""),
                m["to"].as_str().unwrap_or(""),
                m["state"].as_str().unwrap_or(""),
                mib(m["bytes"].as_u64().unwrap_or(0)),
                m["fenceWindowMs"].as_u64().map_or("-".to_string(), |v| v.to_string()),
            );
        }
    }
    0
}

pub fn run_prgs(a: PrgsArgs) -> i32 {
    let PrgsCmd::Add { tenant, count, members } = a.cmd;
    let body = json!({ "count": count, "members": members });
    match run_call("POST", &a.target, &format!("/api/v1/tenants/{tenant}/prgs"), Some(body)) {
        Ok(v) if a.target.json => {
            println!("{v}");
            0
        }
        Ok(v) => {
            let ids: Vec<&str> = v["prgs"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            println!(
                "added {} at routing epoch {}; they own no slots until slots move to them",
                ids.join(", "),
                v["routingEpoch"]
            );
            0
        }
        Err(code) => code,
    }
}

pub fn run_leader(a: LeaderArgs) -> i32 {
    let LeaderCmd::Transfer { prg, to } = a.cmd;
    match run_call("POST", &a.target, &format!("/api/v1/prgs/{prg}/leader"), Some(json!({ "to": to }))) {
        Ok(v) if a.target.json => {
            println!("{v}");
            0
        }
        Ok(v) => {
            println!("{} is led by node {}", v["prg"].as_str().unwrap_or(&prg), v["leader"]);
            0
        }
        Err(code) => code,
    }
}
