//! `tidal operations`: scaling operations, from a node's admin API
//! (`/api/v1/operations`). `tidal operations` lists them, `tidal
//! operations ID` shows one (its phases, steps and events), `tidal
//! operations cancel ID` stops one; `tidal scale --wait` follows one here.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::moves::{get_patiently, mib, run_call, Target};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct OperationsArgs {
    /// Show one operation.
    id: Option<u64>,
    #[command(subcommand)]
    cmd: Option<OperationsCmd>,
    #[command(flatten)]
    target: Target,
}

#[derive(clap::Subcommand)]
enum OperationsCmd {
    /// Stop an operation: before its first slot move commits it rolls
    /// everything back; after, it stops where it is, consistent.
    Cancel { id: u64 },
}

pub fn run(a: OperationsArgs) -> i32 {
    if let Some(OperationsCmd::Cancel { id }) = a.cmd {
        return match run_call("POST", &a.target, &format!("/api/v1/operations/{id}/cancel"), None) {
            Ok(v) if a.target.json => {
                println!("{v}");
                0
            }
            Ok(_) => {
                println!("operation {id}: cancel requested (follow it with `tidal operations {id}`)");
                0
            }
            Err(code) => code,
        };
    }
    if let Some(id) = a.id {
        return match run_call("GET", &a.target, &format!("/api/v1/operations/{id}"), None) {
            Ok(v) if a.target.json => {
                println!("{v}");
                0
            }
            Ok(v) => {
                print_operation(&v);
                0
            }
            Err(code) => code,
        };
    }
    let v = match run_call("GET", &a.target, "/api/v1/operations", None) {
        Ok(v) => v,
        Err(code) => return code,
    };
    if a.target.json {
        println!("{v}");
        return 0;
    }
    let ops = v["operations"].as_array().map_or(&[][..], Vec::as_slice);
    if ops.is_empty() {
        println!("no operations");
    }
    for o in ops {
        println!("{}", line(o));
    }
    0
}

fn line(o: &Value) -> String {
    format!(
        "operation {:<4} {:<10} {:<13} {:<14} steps {}/{}  {} of {}{}",
        o["id"],
        o["type"].as_str().unwrap_or(""),
        o["status"].as_str().unwrap_or(""),
        o["phase"].as_str().unwrap_or(""),
        o["stepsDone"],
        o["steps"],
        mib(o["bytesMoved"].as_u64().unwrap_or(0)),
        mib(o["bytesPlanned"].as_u64().unwrap_or(0)),
        o["error"].as_str().map(|e| format!("  error: {e}")).unwrap_or_default(),
    )
}

/// Everything about one operation, for a person.
pub fn print_operation(o: &Value) {
    println!("{}", line(o));
    let times: Vec<String> = o["phaseTimes"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|p| format!("{} {} ms", p["phase"].as_str().unwrap_or(""), p["ms"]))
        .collect();
    if !times.is_empty() {
        println!("phases: {}", times.join(", "));
    }
    for s in o["stepList"].as_array().map_or(&[][..], Vec::as_slice) {
        let took = match (s["startedMs"].as_u64(), s["finishedMs"].as_u64()) {
            (Some(a), Some(b)) => format!(" in {} ms", b.saturating_sub(a)),
            _ => String::new(),
        };
        println!(
            "  step {:<3} {:<8} {:<48} moves {:<8} {}{}",
            s["index"],
            s["state"].as_str().unwrap_or(""),
            s["what"].as_str().unwrap_or(""),
            s["moves"].to_string(),
            mib(s["bytes"].as_u64().unwrap_or(0)),
            took,
        );
    }
    let events = o["events"].as_array().map_or(&[][..], Vec::as_slice);
    let start = o["startedAt"].as_u64().unwrap_or(0);
    println!("events:");
    for e in events {
        let at = e["atMs"].as_u64().unwrap_or(0).saturating_sub(start);
        println!("  +{:>7.1}s  {}", at as f64 / 1000.0, e["text"].as_str().unwrap_or(""));
    }
}

/// Follow operation `id` with a progress bar until it ends; 0 if it
/// succeeded.
pub fn follow(t: &Target, id: u64) -> i32 {
    let bar = if t.json { ProgressBar::hidden() } else { ProgressBar::new(1) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} operation {prefix} {msg:40} [{bar:25}] {pos}/{len} steps")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_prefix(id.to_string());
    let started = Instant::now();
    loop {
        // Patient: the control plane may be electing a new leader.
        let o = match get_patiently(t, &format!("/api/v1/operations/{id}"), &format!("operation {id}"), 150) {
            Ok(o) => o,
            Err(code) => return code,
        };
        let moved = o["bytesMoved"].as_u64().unwrap_or(0);
        let planned = o["bytesPlanned"].as_u64().unwrap_or(0);
        let elapsed = started.elapsed().as_secs_f64().max(0.001);
        let rate = moved as f64 / elapsed;
        let eta = if moved > 0 && planned > moved {
            format!("ETA {:.0}s", (planned - moved) as f64 / rate)
        } else {
            "ETA -".to_string()
        };
        bar.set_length(o["steps"].as_u64().unwrap_or(0).max(1));
        bar.set_position(o["stepsDone"].as_u64().unwrap_or(0));
        bar.set_message(format!(
            "{} {} at {}/s {eta}",
            o["phase"].as_str().unwrap_or("?"),
            mib(moved),
            mib(rate as u64)
        ));
        bar.tick();
        let status = o["status"].as_str().unwrap_or("");
        if !matches!(status, "running" | "rolling_back") {
            bar.finish_and_clear();
            if t.json {
                println!("{o}");
            } else {
                print_operation(&o);
            }
            return if status == "succeeded" { 0 } else { 1 };
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
